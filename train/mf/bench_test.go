package mf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchShop is the throughput shop: 50k subjects, 20k items, 2M
// interactions (40 per subject), items Zipf-distributed within 50 taste
// groups.
func benchShop(b *testing.B) *Data {
	b.Helper()
	const subjects, items, per, groups = 50000, 20000, 40, 50
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, items/groups-1)
	bld := NewBuilder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := range subjects {
		g := s % groups
		id := fmt.Sprintf("s%d", s)
		for k := range per {
			it := g*(items/groups) + int(z.Uint64())
			if r.Float64() < 0.2 {
				it = r.IntN(items)
			}
			bld.Add(id, fmt.Sprintf("i%d", it), 1, t0.Add(time.Duration(k)*time.Hour))
		}
	}
	d, err := bld.Data()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkFit trains one epoch-equivalent plan (q 0.4, 2 epochs, d 32)
// in DP and non-private mode on the same data, side by side; it reports
// subjects/s and s/epoch. The ratio of the two ns/op is the cost of
// privacy (clipping and noise).
func BenchmarkFit(b *testing.B) {
	d := benchShop(b)
	b.Logf("%d subjects, %d items, %d interactions", len(d.Subjects), len(d.Items), d.Interactions())
	for _, mode := range []struct {
		name string
		eps  float64
	}{{"nonprivate", math.Inf(1)}, {"dp", 8}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Epsilon, cfg.Accountant = mode.eps, "rdp"
			plan, err := cfg.MakePlan()
			if err != nil {
				b.Fatal(err)
			}
			var st *Stats
			for b.Loop() {
				if _, st, err = Fit(context.Background(), d, cfg, plan, FitOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(st.SubjectsPerSec, "subjects/s")
			b.ReportMetric(st.SecondsPerEp, "s/epoch")
		})
	}
}

// recommendShop is a model of 20,000 items (d 32) and n subjects with up
// to 80 distinct items each, in the model's items.
func recommendShop(n int) (*Data, *Model) {
	const d, items, per = 32, 20000, 80
	m := randomModel(d, items, 0, 1)
	tasks := randomTasks(n, items, per, 2)
	data := &Data{Items: m.Items, Subjects: make([]string, n), Rows: make([][]Interaction, n)}
	for s := range n {
		data.Subjects[s] = fmt.Sprintf("s%d", s)
		data.Rows[s] = tasks[s].rows
	}
	return data, m
}

// BenchmarkRecommendExplain recommends the top 20 of 20,000 items (d 32)
// to 3,000 subjects with up to 80 items each, with the reasons of every
// recommendation (3 per item, as the job's recommendations.parquet), and
// without them: the difference is the cost of the reasons.
func BenchmarkRecommendExplain(b *testing.B) {
	const subjects, k, n = 3000, 20, 3
	data, m := recommendShop(subjects)
	all := make([]int, subjects)
	for s := range all {
		all[s] = s
	}
	for _, explain := range []bool{false, true} {
		b.Run(fmt.Sprintf("explain=%v", explain), func(b *testing.B) {
			b.ReportAllocs()
			// CPU time as well as wall time: on a machine other jobs load
			// it stays nearer to what the code costs on an idle one.
			cpu0 := cpuTime(b)
			for b.Loop() {
				err := RecommendEach(data, m, all, k, n, 0, explain, func(int, []Recommended, [][]Contribution) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(subjects)*float64(b.N)/b.Elapsed().Seconds(), "subjects/s")
			b.ReportMetric((cpuTime(b)-cpu0).Seconds()*1e3/float64(b.N), "CPU-ms/op")
		})
	}
}
