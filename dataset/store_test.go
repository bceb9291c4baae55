package dataset_test

import (
	"context"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
)

func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		s, err := dataset.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		return dataset.NewMemStore(t.Name())
	}, storetest.Options{})
}

// TestS3ParquetRangedReads scans Parquet on the real S3 server: the result
// equals what was written, and reads are coalesced into few ranged GETs.
func TestS3ParquetRangedReads(t *testing.T) {
	cfg := storetest.S3Bucket(t, "data")
	cfg.BlockSize = 16 << 10
	cfg.ReadAhead = 3
	s, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := testEvents(20000, 5)
	writeEvents(t, s, "events", want, 20000, parquet.MaxRowsPerRowGroup(5000))
	before := s.Stats()
	got := scanAll(t, dataset.Ref{Store: s, Key: "events"})
	sameEvents(t, got, want)
	gets := s.Stats().RangeGets - before.RangeGets
	bytes := s.Stats().BytesFetched - before.BytesFetched
	info, _ := s.Stat(context.Background(), "events/"+mustInputs(t, s, "events")[0][len("events/"):])
	// A sequential GET fetches up to 4 blocks of 16 KiB; the whole file is
	// read about once (footer, then every chunk).
	if min := info.Size / (4 * cfg.BlockSize); gets > 3*min+8 {
		t.Errorf("%d ranged GETs for a %d-byte file; reads are not coalesced", gets, info.Size)
	}
	if bytes > 3*info.Size {
		t.Errorf("fetched %d bytes for a %d-byte file", bytes, info.Size)
	}
	t.Logf("%d GETs, %d bytes fetched, file %d bytes", gets, bytes, info.Size)

	// A projection reads only its columns: the footer and one small chunk
	// per row group, each one block of 16 KiB at most, not the whole file.
	before = s.Stats()
	scanAll(t, dataset.Ref{Store: s, Key: "events"}, "event_type")
	if got := s.Stats().BytesFetched - before.BytesFetched; got > 8*cfg.BlockSize+4096 {
		t.Errorf("projecting one column fetched %d of %d bytes", got, info.Size)
	}
}

func mustInputs(t *testing.T, s dataset.Store, key string) []string {
	keys, err := dataset.Inputs(context.Background(), dataset.Ref{Store: s, Key: key}, dataset.Window{})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
