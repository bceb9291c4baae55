package release

import (
	"fmt"
	"testing"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// The breakdown of a record is each release alone at the record's δ; the
// charge is the record's own ε, never recomputed.
func TestBreakdown(t *testing.T) {
	model := accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 0.05, NoiseMultiplier: 1.1, Count: 100, Note: "model"}
	curve := model
	curve.NoiseMultiplier, curve.Note = 2, "curve point ε 2"
	hist := accountant.Event{Mechanism: accountant.DiscreteGaussian, Sigma: 5, Sensitivity: 1, Count: 1, Note: "sizes"}
	events := []accountant.Event{model, curve, hist, hist, {Mechanism: accountant.DiscreteLaplace, Scale: 3, Sensitivity: 1, Count: 1}}
	all, err := accountant.Spent("rdp", 1e-5, events...)
	if err != nil {
		t.Fatal(err)
	}
	rec := budget.Record{Dataset: "shop", RunID: "r", Period: "total", Accountant: "rdp", Epsilon: all.Epsilon, Delta: 1e-5, Events: events}
	c, err := Breakdown(rec)
	if err != nil {
		t.Fatal(err)
	}
	if c.Epsilon != rec.Epsilon || c.Delta != rec.Delta || c.Dataset != "shop" || c.Accountant != "rdp" {
		t.Errorf("charge %+v of record %+v", c, rec)
	}
	want := []struct {
		name   string
		events []accountant.Event
	}{{"model", events[:1]}, {"curve point ε 2", events[1:2]}, {"sizes", events[2:4]}, {unnamed, events[4:]}}
	if len(c.Releases) != len(want) {
		t.Fatalf("releases %+v", c.Releases)
	}
	sum := 0.0
	for i, w := range want {
		r, _ := accountant.Spent("rdp", 1e-5, w.events...)
		got := c.Releases[i]
		if got.Release != w.name || got.Epsilon != r.Epsilon || got.Events != len(w.events) {
			t.Errorf("release %d: %+v, want %s ε %v (%d events)", i, got, w.name, r.Epsilon, len(w.events))
		}
		sum += got.Epsilon
	}
	// Composition is sublinear: the parts cost more alone than together.
	if !(sum > c.Epsilon) {
		t.Errorf("releases sum to ε %v, not above the charge %v", sum, c.Epsilon)
	}
	if _, err := Breakdown(budget.Record{Accountant: "nope", Delta: 1e-5, Events: events}); err == nil {
		t.Error("an unknown accountant was accepted")
	}
}

func ExampleBreakdown() {
	model := accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 4, Count: 1, Note: "model"}
	audit := model
	audit.Note = "audit"
	all, _ := accountant.Spent("rdp", 1e-6, model, audit)
	c, _ := Breakdown(budget.Record{Accountant: "rdp", Epsilon: all.Epsilon, Delta: 1e-6, Events: []accountant.Event{model, audit}})
	fmt.Printf("charged ε %.3f at δ %g\n", c.Epsilon, c.Delta)
	for _, r := range c.Releases {
		fmt.Printf("  %s alone: ε %.3f\n", r.Release, r.Epsilon)
	}
	// Output:
	// charged ε 1.661 at δ 1e-06
	//   model alone: ε 1.143
	//   audit alone: ε 1.143
}
