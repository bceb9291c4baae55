package mf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// unobservedGradReference is unobservedGrad as it was first written: a dot
// product of row p of S with v_j for every entry, item after item.
func unobservedGradReference(m *Model, sparse, stats []float64, alpha float64, grad []float64) {
	d := m.Dim
	w := d + 1
	S := stats[:d*d]
	sv := stats[d*d : d*d+d]
	n := stats[d*d+d] / alpha
	k := 2 * m.Unobserved / alpha
	for j := range m.Items {
		r := m.Row(j)
		g := grad[j*w : (j+1)*w]
		sp := sparse[j*w : (j+1)*w]
		b := r[d]
		sb := 0.0
		for p := range d {
			t := 0.0
			Sp := S[p*d : (p+1)*d]
			for q := range d {
				t += Sp[q] * r[q]
			}
			g[p] = sp[p] + k*(t+b*sv[p])
			sb += sv[p] * r[p]
		}
		g[d] = sp[d] + k*sb + 2*m.Unobserved*n*b
	}
}

// updateReference is the optimizer step as it was first written, over all
// items in one pass each.
func updateReference(f *fitter, sum, grad []float64, inv float64) {
	m := f.m
	if f.private {
		for i, v := range sum[:len(m.P)] {
			f.released[i] += v * inv
		}
	}
	unobservedGradReference(m, sum[:len(m.P)], sum[len(m.P):], f.cfg.StatsScale, grad)
	for i := range grad {
		grad[i] *= inv
	}
	const b1, b2, eps = 0.9, 0.999, 1e-8
	a := f.adam
	a.t++
	if a.sgd {
		for i, gi := range grad {
			a.m1[i] = b1*a.m1[i] + gi
			m.P[i] -= a.lr * a.m1[i]
		}
		return
	}
	c1 := 1 - math.Pow(b1, float64(a.t))
	c2 := 1 - math.Pow(b2, float64(a.t))
	for i, gi := range grad {
		a.m1[i] = b1*a.m1[i] + (1-b1)*gi
		a.m2[i] = b2*a.m2[i] + (1-b2)*gi*gi
		m.P[i] -= a.lr * (a.m1[i] / c1) / (math.Sqrt(a.m2[i]/c2) + eps)
	}
}

// TestUpdateBits: the optimizer step split over workers, with the
// unobserved gradient by the vector kernel, has the bits of the step in
// one pass, whatever the number of workers, for Adam and SGD, with
// statistics that are not symmetric (DP noise is not).
func TestUpdateBits(t *testing.T) {
	for _, d := range []int{1, 3, 8, 32, 33} {
		for _, workers := range []int{1, 2, 3} {
			for _, sgd := range []bool{false, true} {
				r := rand.New(rand.NewPCG(uint64(d), uint64(workers)))
				nItems := 5000
				newFitter := func() *fitter {
					m := randomModel(d, nItems, 0, uint64(d))
					f := &fitter{m: m, workers: workers, private: true, cfg: Config{StatsScale: 0.7},
						released: make([]float64, len(m.P)), adam: newAdam(len(m.P), 0.05)}
					f.adam.sgd = sgd
					return f
				}
				got, want := newFitter(), newFitter()
				n := len(got.m.P) + d*d + d + 1
				for step := range 3 {
					sum := make([]float64, n)
					for i := range sum {
						sum[i] = r.NormFloat64() * math.Exp(r.NormFloat64())
					}
					sum[n-1] = 1000 + math.Abs(sum[n-1])
					if !got.update(slices.Clone(sum), make([]float64, len(got.m.P)), 1.0/3000) {
						t.Fatalf("d=%d workers=%d: diverged", d, workers)
					}
					updateReference(want, sum, make([]float64, len(want.m.P)), 1.0/3000)
					for name, pair := range map[string][2][]float64{"factors": {got.m.P, want.m.P}, "released": {got.released, want.released},
						"m1": {got.adam.m1, want.adam.m1}, "m2": {got.adam.m2, want.adam.m2}} {
						for i := range pair[0] {
							if math.Float64bits(pair[0][i]) != math.Float64bits(pair[1][i]) {
								t.Fatalf("d=%d workers=%d sgd=%v step %d: %s[%d] %v, reference %v", d, workers, sgd, step, name, i, pair[0][i], pair[1][i])
							}
						}
					}
				}
			}
		}
	}
}

// TestUpdateDiverged: a factor beyond 1e8 after the step is reported.
func TestUpdateDiverged(t *testing.T) {
	m := randomModel(4, 5000, 0, 1)
	f := &fitter{m: m, workers: 2, cfg: Config{StatsScale: 1}, adam: newAdam(len(m.P), 0.05)}
	f.adam.sgd = true
	sum := make([]float64, len(m.P)+4*4+4+1)
	sum[len(sum)-1] = 1
	sum[len(m.P)-2] = -1e12 // the last item's, in the last worker's range
	if f.update(sum, make([]float64, len(m.P)), 1) {
		t.Fatal("a factor of 5e10 was not reported")
	}
}
