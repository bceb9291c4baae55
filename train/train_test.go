package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// planted makes subjects in groups, each preferring its own block of items.
func planted(subjects, items, groups, per int, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 1))
	b := NewBuilder()
	block := items / groups
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := range subjects {
		g := s % groups
		for k := range per {
			var it int
			if r.Float64() < 0.8 {
				it = g*block + int(math.Floor(float64(block)*r.Float64()*r.Float64())) // skewed within the block
			} else {
				it = r.IntN(items)
			}
			b.Add(fmt.Sprintf("s%d", s), fmt.Sprintf("i%d", it), 1, t0.Add(time.Duration(k)*time.Hour))
		}
	}
	d, _ := b.Data()
	return d
}

func testConfig() Config {
	c := DefaultConfig()
	c.Dim, c.Epochs, c.BatchSize, c.Workers = 16, 8, 300, 2
	c.source = func() rand.Source { return rand.NewPCG(7, 7) }
	return c
}

func fitEval(t *testing.T, d *Data, cfg Config) (Metrics, *Stats) {
	t.Helper()
	tr, test := d.Split(2, 0, 1)
	plan, err := cfg.MakePlan(len(tr.Subjects))
	if err != nil {
		t.Fatal(err)
	}
	m, st, err := Fit(context.Background(), tr, cfg, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(tr, test, ModelRanker(m), 2)
	if err != nil {
		t.Fatal(err)
	}
	return met, st
}

func TestPlantedQuality(t *testing.T) {
	d := planted(4000, 600, 12, 20, 1)
	tr, test := d.Split(2, 0, 1)
	pop, _ := Evaluate(tr, test, PopularityRanker(tr), 2)
	cfg := testConfig()
	cfg.Epsilon = math.Inf(1)
	np, st := fitEval(t, d, cfg)
	t.Logf("popularity %+v", pop)
	t.Logf("non-private %+v (%.2fs, mean norm %.3g)", np, st.Seconds, st.MeanNorm)
	for _, eps := range []float64{8, 1000} {
		for _, lr := range []float64{0.1, 0.3, 1} {
			cfg := testConfig()
			cfg.Optimizer, cfg.LearningRate, cfg.Accountant, cfg.BatchSize = "sgd", lr, "rdp", 1000
			cfg.Epsilon, cfg.Delta = eps, 1e-5
			met, st := fitEval(t, d, cfg)
			t.Logf("ε=%v lr %v σ=%.3f clipped %.2f norm %.3g: R20 %.3f", eps, lr, st.Plan.NoiseMultiplier, st.ClippedShare, st.MeanNorm, met.Recall20)
		}
	}
}
