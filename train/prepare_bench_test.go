package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// BenchmarkPrepareInteractions runs veil train prepare's work on the shop at
// VEIL_BENCH_SHOP (made by veil generate; see scripts/bench/scan.sh).
// Profile with
//
//	VEIL_BENCH_SHOP=DIR go test -run '^$' -bench PrepareInteractions -benchtime 1x -cpuprofile cpu.prof ./train
func BenchmarkPrepareInteractions(b *testing.B) {
	dir := os.Getenv("VEIL_BENCH_SHOP")
	if dir == "" {
		b.Skip("VEIL_BENCH_SHOP is not set")
	}
	cfg := DefaultJobConfig()
	cfg.Events = filepath.Join(dir, "events")
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if _, err := PrepareInteractions(context.Background(), cfg, day, b.TempDir(), 8, dataset.URLOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
