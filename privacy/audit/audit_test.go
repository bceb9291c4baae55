package audit

import (
	"errors"
	"math"
	"testing"
)

// Reference values from the authors' reference code (Steinke, Nasr and
// Jagielski 2023: p_value_DP_audit and get_eps_audit, with scipy 1.10.1).
func TestAgainstReference(t *testing.T) {
	for _, c := range []struct {
		m, r, v      int
		delta        float64
		eps, pAtEps1 float64
	}{
		{1000, 600, 600, 1e-5, 5.270399462431669, 0.00010692857674655734},
		{1000, 200, 200, 1e-6, 4.190923906862736, 2.9819771416786163e-05},
		{1000, 200, 150, 1e-6, 0.8212544862180948, 0.3033112080909601},
		{1000, 200, 100, 1e-6, 0, 0.9999999999988306},
		{10000, 1000, 900, 1e-5, 2.015194483101368, 0.0009948649704168283},
		{200, 40, 40, 0, 2.5540104014799, 3.614823598177147e-06},
	} {
		eps, err := EpsilonLowerBound(c.m, c.r, c.v, c.delta, 0.05)
		if err != nil || math.Abs(eps-c.eps) > 1e-6 {
			t.Errorf("EpsilonLowerBound(%d, %d, %d, %g) = %v, %v; reference %v", c.m, c.r, c.v, c.delta, eps, err, c.eps)
		}
		p, _ := PValue(c.m, c.r, c.v, 1, c.delta)
		if math.Abs(p-c.pAtEps1) > 1e-9*math.Max(1, c.pAtEps1) && math.Abs(p-c.pAtEps1)/c.pAtEps1 > 1e-6 {
			t.Errorf("PValue(%d, %d, %d, 1, %g) = %v; reference %v", c.m, c.r, c.v, c.delta, p, c.pAtEps1)
		}
	}
	if _, err := EpsilonLowerBound(10, 20, 5, 0, 0.05); !errors.Is(err, ErrParam) {
		t.Errorf("r > m: %v", err)
	}
}
