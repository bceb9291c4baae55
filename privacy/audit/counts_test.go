package audit

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/veil-privacy/veil/privacy/dp"
)

// TestDiscreteGaussianAudit passes the sampler at its scale (σ 2, 5, 20)
// with a bound close to the proven ε, and flags it at 0.8 of the scale.
func TestDiscreteGaussianAudit(t *testing.T) {
	for i, sigma := range []float64{2, 5, 20} {
		r := rand.New(dp.NewTestSource(100 + uint64(i)))
		rep, err := DiscreteGaussian(func() (int64, error) { return dp.DiscreteGaussian(r, sigma) }, sigma, 40000, 1e-6, 0.95, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("σ %v: proven ε %.4g, lower bound %.4g (%.3f of it), σ̂ %.4g [%.4g, %.4g], %.2fs", sigma, rep.ProvenEpsilon, rep.EpsilonLowerBound,
			rep.Tightness(), rep.Estimates[0].Value, rep.Estimates[0].Lo, rep.Estimates[0].Hi, rep.Seconds)
		if err := rep.Err(); err != nil {
			t.Errorf("σ %v: %v", sigma, err)
		}
		// A 95% lower bound lands above the true ε in 5% of audits, by
		// design: above 1.05 of it would be a fault the checks missed.
		if rep.Tightness() < 0.8 || rep.Tightness() > 1.05 {
			t.Errorf("σ %v: bound %.4g, proven %.4g", sigma, rep.EpsilonLowerBound, rep.ProvenEpsilon)
		}
	}
	r := rand.New(dp.NewTestSource(9))
	rep, err := DiscreteGaussian(func() (int64, error) { return dp.DiscreteGaussian(r, 0.8*5) }, 5, 40000, 1e-6, 0.95, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, ErrFault) || !rep.Failed(CheckCountScale) {
		t.Errorf("scale 0.8× plan: %v", err)
	} else {
		t.Logf("scale 0.8× plan: %v", err)
	}
}
