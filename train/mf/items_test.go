package mf

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

// withRare returns d plus one subject who alone holds the item "zzz-rare"
// (sorted last, so that the other items keep their places) and also a
// popular item.
func withRare(t *testing.T, d *Data) *Data {
	t.Helper()
	b := NewBuilder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s, rows := range d.Rows {
		for _, x := range rows {
			if err := b.Add(d.Subjects[s], d.Items[x.Item], float64(x.Weight), time.Unix(x.Time, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Add("s-rare", "zzz-rare", 1, t0)
	b.Add("s-rare", "i0", 1, t0.Add(time.Hour))
	nd, err := b.Data()
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

// TestItemUniverseNeighbours trains (DP) with and without the one subject
// who holds a rare item. With a catalog the released item ids are the
// catalog's either way; without one, DP partition selection leaves the
// rare item out (its noisy count passes the threshold with probability at
// most δ_sel) and, with the same noise, the item sets are identical.
func TestItemUniverseNeighbours(t *testing.T) {
	d := planted(1500, 150, 5, 12, 3)
	nd := withRare(t, d)
	fit := func(d *Data, catalog []string) (*Model, *Stats) {
		cfg := testConfig()
		cfg.Epsilon, cfg.Catalog = 4, catalog
		plan, err := cfg.MakePlan()
		if err != nil {
			t.Fatal(err)
		}
		m, st, err := Fit(context.Background(), d, cfg, plan, FitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m, st
	}
	catalog := append(slices.Clone(nd.Items), "never-touched")
	m1, _ := fit(d, catalog)
	m2, _ := fit(nd, catalog)
	if !slices.Equal(m1.Items, catalog) || !slices.Equal(m2.Items, catalog) {
		t.Errorf("with a catalog of %d items the models have %d and %d items", len(catalog), len(m1.Items), len(m2.Items))
	}
	m1, st1 := fit(d, nil)
	m2, st2 := fit(nd, nil)
	if slices.Contains(m2.Items, "zzz-rare") {
		t.Error("the item only one subject holds was released")
	}
	if !slices.Equal(m1.Items, m2.Items) {
		t.Errorf("neighbouring datasets released different item sets: %d and %d items", len(m1.Items), len(m2.Items))
	}
	if len(m1.Items) == 0 || len(m1.Items) == len(d.Items) {
		t.Errorf("partition selection kept %d of %d items: the test does not exercise the threshold", len(m1.Items), len(d.Items))
	}
	if st1.Plan.SelectionDelta != st1.Plan.Delta/2 || !(st1.Plan.Threshold > 1) {
		t.Errorf("plan %+v", st1.Plan)
	}
	// The update's normalizer is q times the noisy subject count: the same
	// noise, one subject more, moves it by exactly q (the subjects bin's
	// sensitivity), and it is not q times the exact count.
	q := st1.Plan.SamplingRate
	if math.Abs(st2.Normalizer-st1.Normalizer-q) > 1e-9 {
		t.Errorf("normalizers %v and %v of neighbours differ by %v, want q = %v", st1.Normalizer, st2.Normalizer, st2.Normalizer-st1.Normalizer, q)
	}
	if exact := q * float64(len(d.Subjects)); math.Abs(st1.Normalizer-exact) < 1e-6 {
		t.Errorf("normalizer %v is q times the exact subject count", st1.Normalizer)
	}
}

func TestPriorBiasRanksByCount(t *testing.T) {
	prev := -1.0
	for _, n := range []float64{-5, 0, 1, 10, 100, 999, 5000} {
		b := priorBias(n, 1000, 0.05)
		if b < prev || b < 0 || b > 1 {
			t.Fatalf("bias %v for count %v after %v", b, n, prev)
		}
		prev = b
	}
}

// TestSelectionOnlyReleasesHeldItems: partition selection's candidates are
// the items of the subjects' bounded, picked sets. An item of the data that
// no picked set holds (only a holdout or the part of a subject's rows that
// max_interactions dropped holds it) has count 0 and is never released,
// however the noise falls; the threshold here lets every held item pass.
func TestSelectionOnlyReleasesHeldItems(t *testing.T) {
	d := &Data{Subjects: []string{"a", "b"}, Items: []string{"held-1", "held-2", "holdout-only", "dropped-only"}}
	rows := [][]Interaction{{{Item: 0, Weight: 1}}, {{Item: 1, Weight: 1}}}
	cfg := testConfig()
	cfg.Epsilon, cfg.Delta = 1, 1e-6
	plan := Plan{HistogramItems: 4, HistogramNoise: 5, SelectionDelta: 1e-7, Threshold: -1e9}
	u, err := itemUniverse(d, rows, []uint64{1, 2}, cfg, plan, true, cfg.source)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.items, []string{"held-1", "held-2"}) {
		t.Errorf("released items %v, want only the held ones", u.items)
	}
}

// TestHistogramItemsDefault: with a catalog (no partition selection) the
// histogram counts every item of a subject's bounded rows (k is
// max_interactions); without one, 16; a configured k is kept.
func TestHistogramItemsDefault(t *testing.T) {
	cfg := testConfig()
	cfg.Epsilon, cfg.MaxInteractions = 2, 120
	for _, c := range []struct {
		name    string
		catalog []string
		named   bool
		k, want int
	}{
		{"no catalog", nil, false, 0, 16},
		{"catalog", []string{"a", "b"}, false, 0, 120},
		{"catalog named, not read yet", nil, true, 0, 120},
		{"configured", []string{"a", "b"}, false, 8, 8},
	} {
		c2 := cfg
		c2.Catalog, c2.catalogNamed, c2.HistogramItems = c.catalog, c.named, c.k
		plan, err := c2.MakePlan()
		if err != nil {
			t.Fatal(err)
		}
		if plan.HistogramItems != c.want {
			t.Errorf("%s: plan's histogram k %d, want %d", c.name, plan.HistogramItems, c.want)
		}
	}
}
