package mf_test

import (
	"context"
	"math"
	"testing"

	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

// TestCurvePointWithoutItems: a curve point whose DP partition selection
// keeps no item is a DP outcome (that model would recommend nothing), not
// a failure of the run whose budget is already spent. It runs
// train.RunExperiment on this package's fixtures.
func TestCurvePointWithoutItems(t *testing.T) {
	d := mf.Planted(600, 60, 4, 8, 5)
	tr, test := d, make([][]int32, len(d.Subjects))
	cfg := mf.TestConfig()
	cfg.Epsilon = 4
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	curve, err := mf.CurvePlans(cfg, []float64{2})
	if err != nil {
		t.Fatal(err)
	}
	curve[0].Threshold = math.Inf(1) // no noisy count passes
	x, err := train.RunExperiment(context.Background(), tr, test, cfg, plan, train.Evaluation{}, curve, mf.FitOptions{}, 1)
	if err != nil {
		t.Fatalf("a curve point without items failed the run: %v", err)
	}
	if len(x.Curve) != 2 || x.Curve[0].Note == "" || x.Curve[0].Metrics != (mf.Metrics{}) {
		t.Errorf("curve %+v: want the ε 2 point with a note and no metrics, then the non-private point", x.Curve)
	}
}
