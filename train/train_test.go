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
	type trial struct {
		eps, lr, clip, alpha float64
		batch                int
		epochs               float64
		opt                  string
	}
	for _, tr := range []trial{
		{8, 0.1, 1, 0.3, 2000, 4, "adam"},
		{8, 0.05, 1, 0.3, 2000, 10, "adam"},
		{8, 0.1, 1, 0.3, 4000, 10, "adam"},
		{8, 0.05, 1, 1, 2000, 4, "adam"},
		{4, 0.05, 1, 0.3, 2000, 4, "adam"},
		{1, 0.05, 1, 0.3, 2000, 4, "adam"},
		{1000, 0.05, 1, 0.3, 2000, 10, "adam"},
	} {
		cfg := testConfig()
		cfg.Optimizer, cfg.LearningRate, cfg.Accountant, cfg.BatchSize = tr.opt, tr.lr, "rdp", tr.batch
		cfg.Clip, cfg.StatsScale, cfg.Epochs = tr.clip, tr.alpha, tr.epochs
		cfg.Epsilon, cfg.Delta = tr.eps, 1e-5
		tr2, test := d.Split(2, 0, 1)
		plan, err := cfg.MakePlan(len(tr2.Subjects))
		if err != nil {
			t.Fatal(err)
		}
		m, st, err := Fit(context.Background(), tr2, cfg, plan, nil)
		if err != nil {
			t.Logf("%+v: %v", tr, err)
			continue
		}
		met, _ := Evaluate(tr2, test, ModelRanker(m), 2)
		t.Logf("%+v steps %d σ=%.3f norm %.3g: R20 %.3f", tr, plan.Steps, plan.NoiseMultiplier, st.MeanNorm, met.Recall20)
	}
}
