package dp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// chiSquare compares observed counts on [lo, hi] (plus the two tails
// pooled) with the exact pmf. Returns the statistic and degrees of freedom.
func chiSquare(counts map[int64]int, n int, lo, hi int64, pmf func(int64) float64) (float64, int) {
	var stat, tailP float64
	tailObs := n
	for x := lo; x <= hi; x++ {
		e := float64(n) * pmf(x)
		o := float64(counts[x])
		stat += (o - e) * (o - e) / e
		tailP += pmf(x)
		tailObs -= counts[x]
	}
	e := float64(n) * (1 - tailP)
	if e > 5 {
		stat += (float64(tailObs) - e) * (float64(tailObs) - e) / e
	}
	return stat, int(hi - lo + 1)
}

// chiCritical is a loose upper quantile of chi-square with df degrees of
// freedom (Wilson–Hilferty, z = 4.75, p ≈ 1e-6): a correct sampler fails
// about once in a million runs; a wrong scale fails every time.
func chiCritical(df int) float64 {
	k := float64(df)
	return k * math.Pow(1-2/(9*k)+4.75*math.Sqrt(2/(9*k)), 3)
}

func normalizedPMF(weight func(int64) float64) func(int64) float64 {
	var z float64
	for x := int64(-2000); x <= 2000; x++ {
		z += weight(x)
	}
	return func(x int64) float64 { return weight(x) / z }
}

func TestDiscreteGaussianDistribution(t *testing.T) {
	for _, sigma := range []float64{0.7, 3, 12.5} {
		r := rand.New(NewTestSource(uint64(sigma * 100)))
		const n = 60000
		counts := map[int64]int{}
		var sum, sumSq float64
		for range n {
			z, err := DiscreteGaussian(r, sigma)
			if err != nil {
				t.Fatal(err)
			}
			counts[z]++
			sum += float64(z)
			sumSq += float64(z * z)
		}
		pmf := normalizedPMF(func(x int64) float64 { return math.Exp(-float64(x*x) / (2 * sigma * sigma)) })
		hi := int64(math.Ceil(3 * sigma))
		stat, df := chiSquare(counts, n, -hi, hi, pmf)
		if stat > chiCritical(df) {
			t.Errorf("sigma %v: chi-square %.1f over %d df exceeds %.1f", sigma, stat, df, chiCritical(df))
		}
		// Mean 0 and exact variance, within 5 standard errors.
		v := DiscreteGaussianVariance(sigma)
		if mean := sum / n; math.Abs(mean) > 5*math.Sqrt(v/n) {
			t.Errorf("sigma %v: mean %v", sigma, mean)
		}
		if got := sumSq / n; math.Abs(got-v) > 5*v*math.Sqrt(2.0/n) {
			t.Errorf("sigma %v: variance %v, want %v", sigma, got, v)
		}
	}
}

// A sampler with the wrong scale must fail the same test: it shows the
// test has power.
func TestChiSquareDetectsWrongScale(t *testing.T) {
	r := rand.New(NewTestSource(9))
	const n = 60000
	counts := map[int64]int{}
	for range n {
		z, _ := DiscreteGaussian(r, 3.15) // 5% too wide
		counts[z]++
	}
	pmf := normalizedPMF(func(x int64) float64 { return math.Exp(-float64(x*x) / 18) })
	if stat, df := chiSquare(counts, n, -9, 9, pmf); stat < chiCritical(df) {
		t.Fatalf("chi-square %.1f did not detect a 5%% wrong scale", stat)
	}
}

func TestDiscreteLaplaceDistribution(t *testing.T) {
	for _, scale := range []float64{0.5, 2, 7.3} {
		r := rand.New(NewTestSource(uint64(scale * 10)))
		const n = 60000
		counts := map[int64]int{}
		var sum, sumAbs float64
		for range n {
			z, err := DiscreteLaplace(r, scale)
			if err != nil {
				t.Fatal(err)
			}
			counts[z]++
			sum += float64(z)
			sumAbs += math.Abs(float64(z))
		}
		pmf := normalizedPMF(func(x int64) float64 { return math.Exp(-math.Abs(float64(x)) / scale) })
		hi := int64(math.Ceil(4 * scale))
		stat, df := chiSquare(counts, n, -hi, hi, pmf)
		if stat > chiCritical(df) {
			t.Errorf("scale %v: chi-square %.1f over %d df exceeds %.1f", scale, stat, df, chiCritical(df))
		}
		// E|Z| = 2p/(1-p²) with p = exp(-1/b), the exact mean absolute value.
		p := math.Exp(-1 / scale)
		want := 2 * p / (1 - p*p)
		varAbs := 2*p/((1-p)*(1-p)) - want*want // E[Z²] = 2p/(1-p)²
		if got := sumAbs / n; math.Abs(got-want) > 5*math.Sqrt(varAbs/n)+1e-9 {
			t.Errorf("scale %v: E|Z| = %v, want %v", scale, got, want)
		}
	}
}

func TestGaussianMoments(t *testing.T) {
	const n = 1 << 20
	const sigma = 2.5
	x := make([]float64, n)
	Gaussian(x, sigma, 1, rand.New(NewTestSource(1)))
	var m1, m2, m4 float64
	for _, v := range x {
		m1 += v
		m2 += v * v
		m4 += v * v * v * v
	}
	m1, m2, m4 = m1/n, m2/n, m4/n
	// The noise's scale, raised to cover the rounding to the lattice.
	sd := newSecureScale(sigma, 1, n).sigma()
	s2 := sd * sd
	if math.Abs(m1) > 5*sigma/math.Sqrt(n) {
		t.Errorf("mean %v", m1)
	}
	if math.Abs(m2-s2) > 5*s2*math.Sqrt(2.0/n) {
		t.Errorf("variance %v, want %v", m2, s2)
	}
	// Kurtosis 3 for a Gaussian; se of m4/σ⁴ is sqrt(96/n).
	if k := m4 / (s2 * s2); math.Abs(k-3) > 5*math.Sqrt(96.0/n) {
		t.Errorf("kurtosis %v, want 3", k)
	}
}

func TestGaussianParallelUsesIndependentSources(t *testing.T) {
	x := make([]float64, 1<<18)
	GaussianParallel(x, 1, 1, func() rand.Source { return NewSecureSource() })
	// Halves drawn by different goroutines must not repeat each other.
	// Values on the lattice (spacing g = 2^-18) coincide by chance about
	// half·g/(2√π) ≈ 0.14 times; repeated sources would give every pair.
	half := len(x) / 2
	same := 0
	for i := range half {
		if x[i] == x[half+i] {
			same++
		}
	}
	if same > 8 {
		t.Fatalf("%d identical draws across goroutines", same)
	}
	var m2 float64
	for _, v := range x {
		m2 += v * v
	}
	if m2 /= float64(len(x)); math.Abs(m2-1) > 5*math.Sqrt(2.0/float64(len(x))) {
		t.Errorf("variance %v", m2)
	}
}

func TestSecureSourcesDiffer(t *testing.T) {
	a, b := NewSecureSource(), NewSecureSource()
	if a.Uint64() == b.Uint64() && a.Uint64() == b.Uint64() {
		t.Fatal("two secure sources gave the same stream")
	}
}

func TestBadParameters(t *testing.T) {
	r := rand.New(NewTestSource(1))
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1), 1e13} {
		if _, err := DiscreteGaussian(r, s); err == nil {
			t.Errorf("DiscreteGaussian(%v) accepted", s)
		}
		if _, err := DiscreteLaplace(r, s); err == nil {
			t.Errorf("DiscreteLaplace(%v) accepted", s)
		}
	}
}

func BenchmarkGaussianSecure(b *testing.B) {
	x := make([]float64, 1<<20)
	b.SetBytes(8 << 20)
	for b.Loop() {
		GaussianParallel(x, 1, 1, func() rand.Source { return NewSecureSource() })
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds(), "coords/s")
}

func BenchmarkGaussianSecureOneCore(b *testing.B) {
	x := make([]float64, 1<<20)
	r := rand.New(NewSecureSource())
	for b.Loop() {
		Gaussian(x, 1, 1, r)
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds(), "coords/s")
}

func BenchmarkDiscreteGaussian(b *testing.B) {
	r := rand.New(NewSecureSource())
	for b.Loop() {
		DiscreteGaussian(r, 5.3)
	}
}
