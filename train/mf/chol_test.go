package mf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestVectorHelpersBits: axpy, rhsAdd and dotLanes give the same bits with
// the vector kernels as without them, and dotLanes is the dot product up
// to rounding.
func TestVectorHelpersBits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vec := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() * math.Exp(4*r.NormFloat64())
		}
		return v
	}
	vector := haveAVX2
	defer func() { haveAVX2 = vector }()
	for _, n := range []int{0, 4, 8, 32, 36, 64} {
		for range 50 {
			x, y, a, on, off := vec(n), vec(n), r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
			var got [2][2][]float64
			var dots [2]float64
			for k, kernels := range []bool{vector, false} {
				haveAVX2 = kernels
				y1, y2 := slices.Clone(y), slices.Clone(y)
				axpy(y1, x, a)
				rhsAdd(y2, x, on, off)
				got[k] = [2][]float64{y1, y2}
				dots[k] = dotLanes(x, y)
			}
			for j := range 2 {
				for i := range n {
					if math.Float64bits(got[0][j][i]) != math.Float64bits(got[1][j][i]) {
						t.Fatalf("n=%d kernel %d, entry %d: vector %v, scalar %v", n, j, i, got[0][j][i], got[1][j][i])
					}
				}
			}
			if math.Float64bits(dots[0]) != math.Float64bits(dots[1]) {
				t.Fatalf("n=%d: dotLanes vector %v, scalar %v", n, dots[0], dots[1])
			}
			exact, mag := 0.0, 0.0
			for i := range n {
				exact += x[i] * y[i]
				mag += math.Abs(x[i] * y[i])
			}
			if math.Abs(dots[0]-exact) > 1e-13*mag {
				t.Fatalf("n=%d: dotLanes %v, dot %v", n, dots[0], exact)
			}
		}
	}
}
