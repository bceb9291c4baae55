package privacy

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
)

// benchShop is a generated shop: VEIL_BENCH_SHOP (made by veil generate,
// for example 1M subjects and 10M events; see scripts/bench/privacy.sh), or
// a small one made here.
var benchShop = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv("VEIL_BENCH_SHOP"); dir != "" {
		return dir, nil
	}
	dir, err := os.MkdirTemp("", "veil-privacy-bench-")
	if err != nil {
		return "", err
	}
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days, cfg.SessionRate = 50000, 5000, 30, 0.06
	shop, err := synth.New(cfg)
	if err != nil {
		return "", err
	}
	s, _ := dataset.NewFileStore(dir)
	_, err = shop.Write(context.Background(), s, "", "bench")
	return dir, err
})

var benchDay = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// BenchmarkConsentIndex builds the index of the shop's consent ledger and
// reports the heap it keeps per subject.
func BenchmarkConsentIndex(b *testing.B) {
	dir, err := benchShop()
	if err != nil {
		b.Fatal(err)
	}
	s, _ := dataset.NewFileStore(dir)
	pol := DefaultPolicy()
	var ix *ConsentIndex
	var before, after runtime.MemStats
	for b.Loop() {
		ix = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix, err = BuildConsentIndex(context.Background(), pol, &dataset.Ref{Store: s, Key: "consent"}, &dataset.Ref{Store: s, Key: "erasure"}, benchDay)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(ix.Len()), "subjects")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(ix.Len()), "heap-bytes/subject")
	b.ReportMetric(float64(ix.Bytes())/float64(ix.Len()), "table-bytes/subject")
	b.ReportMetric(float64(ix.Stats().Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	runtime.KeepAlive(ix)
}

// BenchmarkFilteredScan streams the events through the consent filter of a
// segmentation job on all cores (index built once, outside the timing).
func BenchmarkFilteredScan(b *testing.B) {
	dir, err := benchShop()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, _ := dataset.NewFileStore(dir)
	pol := DefaultPolicy()
	ix, err := BuildConsentIndex(ctx, pol, &dataset.Ref{Store: s, Key: "consent"}, &dataset.Ref{Store: s, Key: "erasure"}, benchDay)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var rows int64
	for b.Loop() {
		f, _ := NewFilter(pol, ix, []string{Segmentation})
		sc, err := FilteredScan(ctx, pol, f, dataset.Ref{Store: s, Key: "events"}, []string{"event_type", "item_id"})
		if err != nil {
			b.Fatal(err)
		}
		keeps := make([][]bool, runtime.GOMAXPROCS(0))
		err = sc.Run(ctx, runtime.GOMAXPROCS(0), func(w int, _ dataset.Unit, batch *dataset.Batch) error {
			var aerr error
			keeps[w], aerr = f.Apply(batch, keeps[w])
			return aerr
		})
		sc.Close()
		if err != nil {
			b.Fatal(err)
		}
		rows = f.Report().RowsRead
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(rows), "events")
}

// BenchmarkScanPII runs the PII guard over the shop's events on all cores.
func BenchmarkScanPII(b *testing.B) {
	dir, err := benchShop()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, _ := dataset.NewFileStore(dir)
	keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "events"}, dataset.Window{})
	if err != nil {
		b.Fatal(err)
	}
	pol := DefaultPolicy()
	b.ReportAllocs()
	var rep *PIIReport
	for b.Loop() {
		if rep, err = ScanPII(ctx, s, keys, pol); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rep.RowsScanned)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rep.ValuesRead), "values")
}
