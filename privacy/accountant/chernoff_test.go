package accountant

import (
	"math"
	"testing"
)

// chernoffBoundsFullWalk is chernoffBounds as it was before the walk
// stopped early: every value of the support is visited for every order.
func chernoffBoundsFullWalk(probs []float64, n int) (int64, int64) {
	m := len(probs)
	lower, upper := int64(0), int64(m-1)*int64(n)
	logTail := math.Log(1 / tailMass)
	var orders []float64
	for k := 1; k <= 20; k++ {
		orders = append(orders, float64(k)/float64(m), -float64(k)/float64(m))
	}
	for j := -12; j <= 4; j++ {
		t := math.Ldexp(1, j) / math.Sqrt(float64(n))
		orders = append(orders, t, -t)
	}
	first, last := -1, -1
	for i, v := range probs {
		if v > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return lower, upper
	}
	for _, t := range orders {
		var sum, maxE float64
		if t > 0 {
			maxE = t * float64(last)
			f, step := 1.0, math.Exp(-t)
			for i := last; i >= first && f > 0; i-- {
				sum += probs[i] * f
				f *= step
			}
		} else {
			maxE = t * float64(first)
			f, step := 1.0, math.Exp(t)
			for i := first; i <= last && f > 0; i++ {
				sum += probs[i] * f
				f *= step
			}
		}
		bound := (float64(n)*(math.Log(sum)+maxE) + logTail) / t
		if t > 0 {
			upper = min(upper, int64(math.Ceil(bound)))
		} else {
			lower = max(lower, int64(math.Floor(bound)))
		}
	}
	if lower > upper {
		lower = upper
	}
	return lower, upper
}

// The early stop of chernoffBounds' walk only skips terms that cannot
// change the sum, so the bounds are exactly those of the full walk.
func TestChernoffBoundsExact(t *testing.T) {
	for _, c := range []struct {
		q, sigma float64
		n        int
		h        float64
	}{{0.4, 1.0534104947758145, 5, 1e-4}, {0.01, 1.1, 1000, 1e-4}, {0.2, 0.5, 3, 1e-4}, {1, 3, 7, 1e-3}, {0.001, 0.8, 10000, 1e-4}, {0.9, 20, 50, 1e-4}} {
		for _, dir := range []direction{remove, add} {
			p, err := gaussianPMF(c.q, c.sigma, dir, c.h)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := chernoffBounds(p.probs, c.n)
			wlo, whi := chernoffBoundsFullWalk(p.probs, c.n)
			if lo != wlo || hi != whi {
				t.Errorf("%+v dir %d: bounds [%d, %d], full walk [%d, %d]", c, dir, lo, hi, wlo, whi)
			}
		}
	}
}
