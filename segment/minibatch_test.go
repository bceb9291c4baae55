package segment

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/segment/kmeans"
)

func TestParquetMatrixAndMiniBatch(t *testing.T) {
	x, _ := blobs(60000, 6, 5, 1.5, 21)
	var buf bytes.Buffer
	if err := WriteParquetMatrix(&buf, x, 7000); err != nil {
		t.Fatal(err)
	}
	s := dataset.NewMemStore(t.Name())
	dataset.PutBytes(ctx, s, "m.parquet", buf.Bytes())
	y, err := LoadMatrix(ctx, dataset.Ref{Store: s, Key: "m.parquet"})
	if err != nil || !equal32(x.Data, y.Data) {
		t.Fatalf("Parquet round trip: %v", err)
	}
	src, err := OpenParquetMatrix(ctx, dataset.Ref{Store: s, Key: "m.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Pieces() != 9 {
		t.Fatalf("%d pieces", src.Pieces())
	}
	mb, err := (&kmeans.MiniBatch{K: 5, BatchSize: 512, Epochs: 2, Seed: 3}).FitStream(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := (&kmeans.KMeans{K: 5, NInit: 3, Seed: 3}).Fit(ctx, x)
	if mb.Inertia > 1.1*full.Inertia {
		t.Errorf("mini-batch inertia %.4g is more than 10%% above Lloyd's %.4g", mb.Inertia, full.Inertia)
	}
	t.Logf("mini-batch %.4g vs Lloyd %.4g", mb.Inertia, full.Inertia)
}

// BenchmarkMiniBatchStream clusters a Parquet matrix of VEIL_BENCH_ROWS rows
// (default 1M) × 32 streamed from disk, and reports the peak heap, which must
// not grow with the rows.
func BenchmarkMiniBatchStream(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VEIL_BENCH_ROWS")); err == nil {
		rows = v
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "m.parquet")
	f, _ := os.Create(path)
	// Write in chunks so that the benchmark's own setup stays small.
	const chunk = 250_000
	w := NewMatrixWriter(f, 32, 100_000)
	for done := 0; done < rows; done += chunk {
		x, _ := blobs(min(chunk, rows-done), 32, 64, 3, uint64(done+1))
		if err := w.Write(x); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	store, _ := dataset.NewFileStore(dir)
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&m) // stops the world: sample, do not spin
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		src, err := OpenParquetMatrix(ctx, dataset.Ref{Store: store, Key: "m.parquet"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (&kmeans.MiniBatch{K: 64, BatchSize: 4096, Epochs: 1, Seed: 1}).FitStream(ctx, src); err != nil {
			b.Fatal(err)
		}
		src.Close()
	}
	close(stop)
	<-done
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(rows), "rows")
}
