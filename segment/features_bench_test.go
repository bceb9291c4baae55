package segment

import (
	"os"
	"runtime"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// BenchmarkBuildFeatures builds the features of the shop at VEIL_BENCH_SHOP
// (made by veil generate; see scripts/bench/scan.sh), as veil segment
// prepare does on all cores. Profile with
//
//	VEIL_BENCH_SHOP=DIR go test -run '^$' -bench BuildFeatures -benchtime 3x -cpuprofile cpu.prof ./segment
func BenchmarkBuildFeatures(b *testing.B) {
	dir := os.Getenv("VEIL_BENCH_SHOP")
	if dir == "" {
		b.Skip("VEIL_BENCH_SHOP is not set")
	}
	store, err := dataset.NewFileStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	pol := privacy.DefaultPolicy()
	ix, err := privacy.BuildConsentIndex(ctx, pol, &dataset.Ref{Store: store, Key: "consent"}, &dataset.Ref{Store: store, Key: "erasure"}, logical)
	if err != nil {
		b.Fatal(err)
	}
	events := dataset.Ref{Store: store, Key: "events"}
	for b.Loop() {
		flt, err := privacy.NewFilter(pol, ix, []string{privacy.Segmentation})
		if err != nil {
			b.Fatal(err)
		}
		f, err := BuildFeatures(ctx, pol, flt, events, DefaultFeatureConfig(), logical, runtime.GOMAXPROCS(0))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(f.Subjects)), "subjects")
	}
}

// BenchmarkPrepare is veil segment prepare on the shop at VEIL_BENCH_SHOP:
// the consent index, the PII guard, the features and the shards written.
func BenchmarkPrepare(b *testing.B) {
	dir := os.Getenv("VEIL_BENCH_SHOP")
	if dir == "" {
		b.Skip("VEIL_BENCH_SHOP is not set")
	}
	cfg := DefaultConfig()
	cfg.Events = dir + "/events"
	cfg.Output = b.TempDir()
	for b.Loop() {
		if _, err := Prepare(ctx, cfg, logical, b.TempDir(), DefaultShards, dataset.URLOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
