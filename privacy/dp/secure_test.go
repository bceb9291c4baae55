package dp

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The fast integer-scale sampler draws the same distribution as the exact
// big-integer one: a chi-square test against the discrete Gaussian's pmf
// (fixed seeds; p ≈ 1e-6 critical value, see chiCritical).
func TestDiscreteGaussianScaleDistribution(t *testing.T) {
	for _, s := range []uint64{1, 3, 12} {
		r := rand.New(NewTestSource(s))
		const n = 100000
		counts := map[int64]int{}
		for range n {
			counts[discreteGaussianScale(r, s)]++
		}
		sigma := float64(s)
		pmf := normalizedPMF(func(x int64) float64 { return math.Exp(-float64(x*x) / (2 * sigma * sigma)) })
		hi := int64(math.Ceil(3 * sigma))
		stat, df := chiSquare(counts, n, -hi, hi, pmf)
		if stat > chiCritical(df) {
			t.Errorf("s %d: chi-square %.1f > %.1f (df %d)", s, stat, chiCritical(df), df)
		}
	}
}

// Gaussian's output values are exact multiples of the granularity,
// a power of two derived from σ alone; their noise has variance σ'² (σ
// raised by the rounding's sensitivity increase, by at most 2^-18·√d/Δ·σ
// relative) and is normal: a Kolmogorov–Smirnov test against N(x, σ'²)
// with a fixed seed. Tolerances: n = 200000 draws, so the sample variance
// is within 6 standard errors (6·√(2/n) ≈ 1.9%) and the KS statistic below
// 1.95/√n (p ≈ 0.001).
func TestGaussian(t *testing.T) {
	for _, tc := range []struct{ sigma, sensitivity, x float64 }{{1.7, 1, 0.3}, {0.05, 0.05, 12345.678}, {3e4, 2, -1e6}} {
		const n = 200000
		dst := make([]float64, n)
		for i := range dst {
			dst[i] = tc.x
		}
		r := rand.New(NewTestSource(7))
		Gaussian(dst, tc.sigma, tc.sensitivity, r)
		g := Granularity(tc.sigma)
		if math.Log2(g) != math.Floor(math.Log2(g)) || !(tc.sigma/g >= 1<<18 && tc.sigma/g < 1<<19) {
			t.Fatalf("σ %v: granularity %v is not a power of two at 2^-18 of σ", tc.sigma, g)
		}
		sc := newSecureScale(tc.sigma, tc.sensitivity, n)
		want := sc.sigma()
		if want < tc.sigma || want > tc.sigma*(1+(g*math.Sqrt(n)+g)/tc.sensitivity+1e-12) {
			t.Fatalf("σ %v: noise scale %v", tc.sigma, want)
		}
		center := math.RoundToEven(tc.x/g) * g
		var sum, sumSq float64
		for _, v := range dst {
			if math.Mod(v, g) != 0 {
				t.Fatalf("σ %v: %v is not a multiple of the granularity %v", tc.sigma, v, g)
			}
			d := v - center
			sum += d
			sumSq += d * d
		}
		mean, variance := sum/n, sumSq/n-(sum/n)*(sum/n)
		if math.Abs(mean) > 6*want/math.Sqrt(n) || math.Abs(variance/(want*want)-1) > 6*math.Sqrt(2.0/n) {
			t.Errorf("σ %v: mean %v, variance %v, want 0 and %v", tc.sigma, mean, variance, want*want)
		}
		slices.Sort(dst)
		var ks float64
		for i, v := range dst {
			c := 0.5 * math.Erfc(-(v-center)/(want*math.Sqrt2))
			ks = math.Max(ks, math.Max(math.Abs(c-float64(i)/n), math.Abs(c-float64(i+1)/n)))
		}
		if ks > 1.95/math.Sqrt(n) {
			t.Errorf("σ %v: KS statistic %.5f against N(0, %v²)", tc.sigma, ks, want)
		}
	}
}

// The output's low-order bits do not depend on the input: two inputs that
// round to the same lattice point give identically distributed outputs
// (here: the same outputs from the same seed), the property Mironov's
// attack breaks for float Gaussian noise.
func TestSecureGaussianHidesLowOrderBits(t *testing.T) {
	g := Granularity(1)
	a, b := []float64{0.5, -3}, []float64{0.5 + g/4, -3 - g/3}
	Gaussian(a, 1, 1, rand.New(NewTestSource(3)))
	Gaussian(b, 1, 1, rand.New(NewTestSource(3)))
	if !slices.Equal(a, b) {
		t.Errorf("outputs differ: %v %v", a, b)
	}
}

// NoiseScale is the scale Gaussian draws, not the one asked for: at a
// million coordinates of sensitivity 0.5 and σ 1 the rounding raises the
// variance by 1.6%, and the sample variance of 2^20 draws (standard error
// √(2/n) ≈ 0.14%, tolerance 5 of them) tells the two apart.
func TestNoiseScaleIsWhatGaussianDraws(t *testing.T) {
	const d, sigma, sensitivity = 1 << 20, 1.0, 0.5
	want := NoiseScale(sigma, sensitivity, d)
	if want != newSecureScale(sigma, sensitivity, d).sigma() || NoiseScale(0, sensitivity, d) != 0 {
		t.Fatalf("NoiseScale %v is not the secure scale", want)
	}
	dst := make([]float64, d)
	Gaussian(dst, sigma, sensitivity, rand.New(NewTestSource(3)))
	var ss float64
	for _, v := range dst {
		ss += v * v
	}
	tol := 5 * math.Sqrt(2.0/d)
	if v := ss / d / (want * want); math.Abs(v-1) > tol {
		t.Errorf("sample variance %.5g× NoiseScale²", v)
	}
	if v := ss / d / (sigma * sigma); math.Abs(v-1) <= tol {
		t.Errorf("sample variance %.5g× σ²: the test cannot tell NoiseScale from σ", v)
	}
}
