package dataset_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
	"github.com/veil-privacy/veil/dataset/synth"
)

// benchShop generates (once per process) an events dataset of about
// VEIL_BENCH_EVENTS events (default 1M) into a temporary directory, or uses
// the shop at VEIL_BENCH_DATA (made by veil generate) when set.
var benchShop = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv("VEIL_BENCH_DATA"); dir != "" {
		return dir, nil
	}
	events := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VEIL_BENCH_EVENTS")); err == nil {
		events = v
	}
	dir, err := os.MkdirTemp("", "veil-bench-")
	if err != nil {
		return "", err
	}
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days, cfg.SessionRate = max(1000, events/100), 20000, 90, 0.2
	shop, err := synth.New(cfg)
	if err != nil {
		return "", err
	}
	s, _ := dataset.NewFileStore(dir)
	_, err = shop.Write(context.Background(), s, "", "bench")
	return dir, err
})

// scanColumns is the projection of a typical job: who, when, what, which
// item, and how much.
var scanColumns = []string{"subject_id", "event_time", "event_type", "item_id", "value"}

func benchScan(b *testing.B, s dataset.Store, prefix string) {
	ctx := context.Background()
	keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: prefix}, dataset.Window{})
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, k := range keys {
		info, err := s.Stat(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		bytes += info.Size
	}
	b.ReportAllocs()
	b.SetBytes(bytes)
	var rows int64
	for b.Loop() {
		sc, err := dataset.OpenScan(ctx, s, keys, dataset.EventsContract, scanColumns...)
		if err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		var sink atomic.Int64
		err = sc.Run(ctx, runtime.GOMAXPROCS(0), func(_ int, _ dataset.Unit, batch *dataset.Batch) error {
			// Touch every projected value so that nothing is skipped.
			var acc int64
			for _, t := range batch.Column("event_time").Int {
				acc += t
			}
			for _, x := range batch.Column("subject_id").Str.Index {
				acc += int64(x)
			}
			sink.Add(acc)
			n.Add(int64(batch.Rows))
			return nil
		})
		sc.Close()
		if err != nil {
			b.Fatal(err)
		}
		rows = n.Load()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows), "rows")
}

func BenchmarkScanFile(b *testing.B) {
	dir, err := benchShop()
	if err != nil {
		b.Fatal(err)
	}
	s, _ := dataset.NewFileStore(dir)
	benchScan(b, s, "events")
}

func BenchmarkScanS3(b *testing.B) {
	dir, err := benchShop()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s3, err := s3.New(ctx, storetest.S3Bucket(b, ""))
	if err != nil {
		b.Fatal(err)
	}
	local, _ := dataset.NewFileStore(dir)
	for info, err := range local.List(ctx, "events/") {
		if err != nil {
			b.Fatal(err)
		}
		obj, err := local.Open(ctx, info.Key)
		if err != nil {
			b.Fatal(err)
		}
		if err := s3.Put(ctx, info.Key, ioSection(obj)); err != nil {
			b.Fatal(err)
		}
		obj.Close()
	}
	b.ResetTimer()
	benchScan(b, s3, "events")
	st := s3.Stats()
	b.ReportMetric(float64(st.RangeGets)/float64(b.N), "GETs/op")
}

func ioSection(o dataset.Object) *io.SectionReader { return io.NewSectionReader(o, 0, o.Size()) }
