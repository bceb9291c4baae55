package accountant

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

func relClose(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.IsInf(want, 1) {
		if !math.IsInf(got, 1) {
			t.Errorf("%s = %v, want +Inf", what, got)
		}
		return
	}
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s = %.10g, want %.10g (relative tolerance %g)", what, got, want, rel)
	}
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// dp_accounting rdp_privacy_accountant_test.py,
// test_compute_rdp_poisson_sampled_gaussian: q = 0.01, σ = 2.5, 50 steps.
// The reference values are printed to 9 significant digits; we ask for 1e-6.
func TestRDPPoissonGaussianReference(t *testing.T) {
	orders := []float64{1.5, 2.5, 5, 50, 100, math.Inf(1)}
	a := NewRDPOrders(orders)
	if err := a.Compose(Event{Mechanism: SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 2.5, Count: 50}); err != nil {
		t.Fatal(err)
	}
	want := []float64{6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02, math.Inf(1)}
	for i, w := range want {
		relClose(t, "rdp at order "+ftoa(orders[i]), a.RDPs()[i], w, 1e-6)
	}
}

// dp_accounting test_compute_epsilon_delta_pure_dp: constant RDP 1.1 on
// orders 2..32 gives ε = 1.32783806176 at δ = 1e-5, at order 32.
func TestRDPConversionPureDP(t *testing.T) {
	var orders, rdp []float64
	for a := 2; a <= 32; a++ {
		orders = append(orders, float64(a))
		rdp = append(rdp, 1.1)
	}
	eps, order := rdpToEpsilon(orders, rdp, 1e-5)
	relClose(t, "epsilon", eps, 1.32783806176, 1e-9)
	if order != 32 {
		t.Errorf("optimal order %v, want 32", order)
	}
}

// dp_accounting test_compute_epsilon_delta_gaussian: the Gaussian mechanism
// with σ = 4.530877117 is (1, 1e-6)-DP on orders 1.000..99.999 (step 0.001).
func TestRDPGaussianReference(t *testing.T) {
	var orders []float64
	for i := 1000; i < 100000; i++ {
		orders = append(orders, 0.001*float64(i))
	}
	a := NewRDPOrders(orders)
	a.Compose(Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 4.530877117, Count: 1})
	r, err := a.Epsilon(1e-6)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Epsilon-1) > 1e-7 { // assertAlmostEqual's 7 places
		t.Errorf("epsilon %.10f, want 1", r.Epsilon)
	}
}

// Opacus tests/accountants_test.py (test_rdp_accountant): q = 0.04, σ = 1.5,
// int(90 / 0.04) = 2250 steps, δ = 1e-5 gives ε 7.32911117143 on Opacus'
// orders (1 + x/10 for x in 1..99, then 12..63). The optimum is the
// fractional order 3.9, where Opacus sums the series for A_α with signs and
// dp_accounting (which we follow) sums absolute values: an upper bound on
// A_α, so our ε is a hair larger (3e-5 relative), never smaller.
func TestRDPOpacusReference(t *testing.T) {
	var orders []float64
	for x := 1; x < 100; x++ {
		orders = append(orders, 1+float64(x)/10)
	}
	for a := 12; a < 64; a++ {
		orders = append(orders, float64(a))
	}
	a := NewRDPOrders(orders)
	a.Compose(Event{Mechanism: SubsampledGaussian, SamplingRate: 0.04, NoiseMultiplier: 1.5, Count: 2250})
	r, err := a.Epsilon(1e-5)
	if err != nil {
		t.Fatal(err)
	}
	relClose(t, "epsilon", r.Epsilon, 7.32911117143, 1e-4)
	if r.Epsilon < 7.32911117143 {
		t.Errorf("epsilon %.9f is below Opacus' exact-series value", r.Epsilon)
	}
}

// logA against direct numerical integration of A_α = E_{z~N(0,σ²)}[(1 - q +
// q exp((2z-1)/(2σ²)))^α] (the definition dp_accounting's mpmath test uses),
// with Simpson's rule on a wide grid.
func TestLogAAgainstIntegration(t *testing.T) {
	cases := []struct{ q, sigma, alpha float64 }{
		{1e-3, 1, 2}, {0.01, 10, 20}, {0.1, 100, 20.5}, {1e-4, 1, 1.5}, {0.05, 2, 7.3}, {0.2, 0.8, 3}, {0.01, 1.5, 33},
	}
	for _, c := range cases {
		f := func(z float64) float64 {
			return math.Exp(-z*z/(2*c.sigma*c.sigma)) / (c.sigma * math.Sqrt(2*math.Pi)) *
				math.Pow(1-c.q+c.q*math.Exp((2*z-1)/(2*c.sigma*c.sigma)), c.alpha)
		}
		lo, hi := -20*c.sigma-5, 20*c.sigma+c.alpha*5
		n := 400000
		h := (hi - lo) / float64(n)
		sum := f(lo) + f(hi)
		for i := 1; i < n; i++ {
			w := 2.0
			if i%2 == 1 {
				w = 4
			}
			sum += w * f(lo+float64(i)*h)
		}
		want := math.Log(sum * h / 3)
		var got float64
		if c.alpha == math.Trunc(c.alpha) {
			got = logAInt(c.q, c.sigma, int(c.alpha))
		} else {
			got = logAFrac(c.q, c.sigma, c.alpha)
		}
		if math.Abs(got-want) > 1e-4*math.Abs(want)+1e-8 {
			t.Errorf("logA(q=%v, σ=%v, α=%v) = %.12g, integration gives %.12g", c.q, c.sigma, c.alpha, got, want)
		}
	}
}

// Exact δ(ε) of the Gaussian mechanism (Balle and Wang 2018, Theorem 8).
func gaussianDelta(sigma, eps float64) float64 {
	return normCDF(-eps*sigma+1/(2*sigma)) - math.Exp(eps)*normCDF(-eps*sigma-1/(2*sigma))
}

// dp_accounting pld_privacy_accountant_test.py test_gaussian_basic: three
// Gaussians with σ = √3 are one with σ = 1: ε = 1 at δ = 0.126936.
func TestPLDGaussianReference(t *testing.T) {
	r, err := Spent("pld", 0.126936, Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: math.Sqrt(3), Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Epsilon-1) > 1e-3 {
		t.Errorf("epsilon %.6f, want 1", r.Epsilon)
	}
}

// dp_accounting test_poisson_subsampled_gaussian: q = 0.2, σ = 0.5, three
// steps: δ(1) = 0.15594, so ε(0.15594) = 1.
func TestPLDSubsampledReference(t *testing.T) {
	r, err := Spent("pld", 0.15594, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.2, NoiseMultiplier: 0.5, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Epsilon-1) > 1e-2 { // within 1%
		t.Errorf("epsilon %.6f, want 1", r.Epsilon)
	}
}

// For the plain Gaussian the true curve is known: the PLD answer is never
// below it and within 1% of it, over many compositions.
func TestPLDGaussianExactAndPessimistic(t *testing.T) {
	for _, c := range []struct {
		sigma float64
		n     int
	}{{2, 1}, {5, 10}, {20, 400}, {60, 3000}} {
		eff := c.sigma / math.Sqrt(float64(c.n)) // n compositions = one with σ/√n
		for _, delta := range []float64{1e-5, 1e-8} {
			lo, hi := 0.0, 100.0
			for range 200 {
				mid := (lo + hi) / 2
				if gaussianDelta(eff, mid) > delta {
					lo = mid
				} else {
					hi = mid
				}
			}
			trueEps := hi
			r, err := Spent("pld", delta, Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: c.sigma, Count: c.n})
			if err != nil {
				t.Fatal(err)
			}
			if r.Epsilon < trueEps*(1-1e-9) {
				t.Errorf("σ=%v n=%d δ=%g: PLD ε %.6f is below the true %.6f", c.sigma, c.n, delta, r.Epsilon, trueEps)
			}
			if r.Epsilon > trueEps*1.01 {
				t.Errorf("σ=%v n=%d δ=%g: PLD ε %.6f is more than 1%% above the true %.6f", c.sigma, c.n, delta, r.Epsilon, trueEps)
			}
		}
	}
}

// PLD is tighter than RDP for DP-SGD-like settings.
func TestPLDTighterThanRDP(t *testing.T) {
	for _, c := range []struct {
		q, sigma float64
		n        int
	}{{0.01, 1.1, 1000}, {0.04, 1.5, 2250}, {0.001, 0.8, 10000}} {
		ev := Event{Mechanism: SubsampledGaussian, SamplingRate: c.q, NoiseMultiplier: c.sigma, Count: c.n}
		rdp, _ := Spent("rdp", 1e-5, ev)
		pld, err := Spent("pld", 1e-5, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !(pld.Epsilon < rdp.Epsilon) {
			t.Errorf("%+v: PLD ε %.4f is not below RDP ε %.4f", c, pld.Epsilon, rdp.Epsilon)
		}
		if pld.Epsilon < 0.5*rdp.Epsilon {
			t.Errorf("%+v: PLD ε %.4f is implausibly far below RDP ε %.4f", c, pld.Epsilon, rdp.Epsilon)
		}
		t.Logf("q=%v σ=%v steps=%d: RDP ε %.4f, PLD ε %.4f", c.q, c.sigma, c.n, rdp.Epsilon, pld.Epsilon)
	}
}

func TestDiscreteMechanisms(t *testing.T) {
	// Discrete Laplace with scale 1/ε and sensitivity 1 is exactly ε-DP:
	// PLD finds ε up to the grid (at δ = 1e-9 a hair less is allowed).
	for _, eps := range []float64{0.5, 1, 2} {
		r, err := Spent("pld", 1e-9, Event{Mechanism: DiscreteLaplace, Scale: 1 / eps, Sensitivity: 1, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Epsilon < eps-1e-6 || r.Epsilon > eps+2*DefaultInterval {
			t.Errorf("discrete Laplace ε=%v: PLD says %v", eps, r.Epsilon)
		}
	}
	// The discrete Gaussian is close to the continuous one for large σ
	// (Canonne, Kamath, Steinke 2020): within 2% at σ = 10.
	dg, err := Spent("pld", 1e-6, Event{Mechanism: DiscreteGaussian, Sigma: 10, Sensitivity: 1, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := Spent("pld", 1e-6, Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 10, Count: 1})
	if math.Abs(dg.Epsilon-g.Epsilon) > 0.02*g.Epsilon {
		t.Errorf("discrete Gaussian σ=10: ε %v vs continuous %v", dg.Epsilon, g.Epsilon)
	}
	rdg, _ := Spent("rdp", 1e-6, Event{Mechanism: DiscreteGaussian, Sigma: 10, Sensitivity: 1, Count: 1})
	if rdg.Epsilon < dg.Epsilon {
		t.Errorf("RDP %v below PLD %v for the discrete Gaussian", rdg.Epsilon, dg.Epsilon)
	}
}

// Composition of different events in one accountant: DP-SGD steps, k-means
// iterations and a noisy count.
func TestHeterogeneousComposition(t *testing.T) {
	events := []Event{
		{Mechanism: SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 1.2, Count: 2000},
		{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 20, Count: 10},
		{Mechanism: DiscreteGaussian, Sigma: 8, Sensitivity: 1, Count: 1},
	}
	for _, name := range []string{"rdp", "pld"} {
		all, err := Spent(name, 1e-6, events...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			one, _ := Spent(name, 1e-6, e)
			if one.Epsilon >= all.Epsilon {
				t.Errorf("%s: one event spends %v, all together %v", name, one.Epsilon, all.Epsilon)
			}
		}
		t.Logf("%s: ε %.4f", name, all.Epsilon)
	}
}

func TestCalibrate(t *testing.T) {
	for _, name := range []string{"rdp", "pld"} {
		c, err := Calibrate(name, 2, 0.01, 1000, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if c.Epsilon > 2 {
			t.Errorf("%s: calibrated ε %v above the target", name, c.Epsilon)
		}
		// A bit less noise must overshoot the target: the answer is the
		// smallest to the stated tolerance.
		less, _ := Spent(name, 1e-5, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: c.NoiseMultiplier * (1 - 3e-4), Count: 1000})
		if less.Epsilon <= 2 {
			t.Errorf("%s: σ %v is not the smallest: %v also meets ε 2 (%v)", name, c.NoiseMultiplier, c.NoiseMultiplier*(1-3e-4), less.Epsilon)
		}
		t.Logf("%s: σ %.5f for ε ≤ 2 (spends %.5f)", name, c.NoiseMultiplier, c.Epsilon)
	}
	if _, err := Calibrate("rdp", 1e-6, 1, 100000, 1e-10); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unreachable target: %v, want ErrUnreachable", err)
	}
}

func TestBadParameters(t *testing.T) {
	bad := []Event{
		{Mechanism: SubsampledGaussian, SamplingRate: 0, NoiseMultiplier: 1, Count: 1},
		{Mechanism: SubsampledGaussian, SamplingRate: 1.5, NoiseMultiplier: 1, Count: 1},
		{Mechanism: SubsampledGaussian, SamplingRate: math.NaN(), NoiseMultiplier: 1, Count: 1},
		{Mechanism: SubsampledGaussian, SamplingRate: 0.1, NoiseMultiplier: 0, Count: 1},
		{Mechanism: SubsampledGaussian, SamplingRate: 0.1, NoiseMultiplier: math.Inf(1), Count: 1},
		{Mechanism: SubsampledGaussian, SamplingRate: 0.1, NoiseMultiplier: 1, Count: 0},
		{Mechanism: DiscreteGaussian, Sigma: 1, Sensitivity: 0, Count: 1},
		{Mechanism: "laplace", Count: 1},
	}
	for _, e := range bad {
		for _, name := range []string{"rdp", "pld"} {
			if _, err := Spent(name, 1e-5, e); !errors.Is(err, ErrParam) {
				t.Errorf("%s %+v: %v, want ErrParam", name, e, err)
			}
		}
	}
	for _, d := range []float64{0, 1, -1, math.NaN()} {
		if _, err := Spent("rdp", d); !errors.Is(err, ErrParam) {
			t.Errorf("delta %v accepted", d)
		}
	}
	if _, err := New("moments"); !errors.Is(err, ErrParam) {
		t.Error("unknown accountant accepted")
	}
}

func BenchmarkRDP100kSteps(b *testing.B) {
	for b.Loop() {
		Spent("rdp", 1e-5, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 1.1, Count: 100000})
	}
}

func BenchmarkPLD10kSteps(b *testing.B) {
	for b.Loop() {
		memo.reset() // measure the composition, not the memo
		Spent("pld", 1e-5, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 1.1, Count: 10000})
	}
}

// A pure-δ event takes its δ out of the target before conversion. By hand:
// the Gaussian mechanism with σ = 1 (here σ = √3 three times) has
// δ(ε = 1) = Φ(-1/2) - e·Φ(-3/2) = 0.308538 - 2.718282·0.066807 = 0.126936,
// so with 2 × 0.025 of pure δ on top, ε at δ = 0.176936 is 1.
func TestPureDelta(t *testing.T) {
	g := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: math.Sqrt(3), Count: 3}
	pd := Event{Mechanism: PureDelta, Delta: 0.025, Count: 2}
	r, err := Spent("pld", 0.126936+0.05, g, pd)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Epsilon-1) > 1e-3 {
		t.Errorf("pld: epsilon %.6f, want 1", r.Epsilon)
	}
	if r.Delta != 0.176936 {
		t.Errorf("pld: delta %v, want the whole target 0.176936", r.Delta)
	}
	// RDP: exactly the Gaussian's ε at the δ that is left.
	want, err := Spent("rdp", 1e-5, g)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Spent("rdp", 1e-5+3e-6, g, Event{Mechanism: PureDelta, Delta: 1e-6, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	relClose(t, "rdp epsilon", got.Epsilon, want.Epsilon, 1e-12)
	// A target δ that the pure δ uses up has no finite ε, for both.
	for _, name := range []string{"rdp", "pld"} {
		if r, err := Spent(name, 0.04, g, pd); err != nil || !math.IsInf(r.Epsilon, 1) {
			t.Errorf("%s: pure δ 0.05 above the target 0.04: %+v, %v", name, r, err)
		}
	}
	if err := (Event{Mechanism: PureDelta, Delta: 1, Count: 1}).Validate(); !errors.Is(err, ErrParam) {
		t.Errorf("pure δ 1: %v", err)
	}
	// Calibration with fixed events: the total stays within the target.
	c, err := CalibrateWith("rdp", 2, 0.1, 100, 1e-5, Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 5, Count: 1}, Event{Mechanism: PureDelta, Delta: 5e-6, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	alone, _ := Calibrate("rdp", 2, 0.1, 100, 1e-5)
	if !(c.Epsilon <= 2 && c.NoiseMultiplier > alone.NoiseMultiplier) {
		t.Errorf("calibrated with fixed events: %+v, alone %+v", c, alone)
	}
}

// TestSmallestSigma checks the root search against bisection on smooth
// curves shaped like ε(σ) and on the PLD accountant: the same bracket
// invariant (the answer spends at most the target, and 1e-4 less noise
// would not), in far fewer evaluations.
func TestSmallestSigma(t *testing.T) {
	bisect := bisectSigma
	pld := func(q float64, steps int) func(float64) (float64, error) {
		return func(s float64) (float64, error) {
			r, err := Spent("pld", 1e-6, Event{Mechanism: SubsampledGaussian, SamplingRate: q, NoiseMultiplier: s, Count: steps})
			return r.Epsilon, err
		}
	}
	for _, c := range []struct {
		name           string
		f              func(float64) (float64, error)
		target, lo, hi float64
		maxEvals       int
	}{
		{"power law", func(s float64) (float64, error) { return 3 / math.Pow(s, 1.3), nil }, 2, 0.05, 1000, 8},
		{"curved", func(s float64) (float64, error) { return 1/s + 4/(s*s) + math.Exp(-s), nil }, 2, 0.5, 5, 8},
		{"failing below 0.3", func(s float64) (float64, error) {
			if s < 0.3 {
				return 0, ErrParam
			}
			return 2 / s, nil
		}, 4, 0.1, 1, 10},
		{"pld q 0.4, 5 steps", pld(0.4, 5), 8, 0.5, 3, 7},
		{"pld q 0.01, 100 steps", pld(0.01, 100), 1, 0.3, 1.2, 7},
	} {
		epsLo, errLo := c.f(c.lo)
		if errLo != nil {
			epsLo = math.Inf(1)
		}
		epsHi, _ := c.f(c.hi)
		if !(epsLo > c.target) || epsHi > c.target {
			t.Fatalf("%s: [%v, %v] does not bracket ε %v (%v, %v)", c.name, c.lo, c.hi, c.target, epsLo, epsHi)
		}
		got, eps, n := smallestSigma(c.f, c.target, c.lo, c.hi, epsLo, epsHi)
		want, nb := got, 0
		if !strings.HasPrefix(c.name, "pld") { // PLD evaluations are slow; the bracket check below is the same
			want, nb = bisect(c.f, c.target, c.lo, c.hi)
		}
		check, _ := c.f(got)
		less, err := c.f(got * (1 - 1e-4))
		if check != eps || eps > c.target || (err == nil && less <= c.target) {
			t.Errorf("%s: σ %v spends %v (reported %v) for target %v; 1e-4 less noise spends %v", c.name, got, check, eps, c.target, less)
		}
		if math.Abs(got-want)/want > 2e-4 {
			t.Errorf("%s: σ %v, bisection %v", c.name, got, want)
		}
		if n > c.maxEvals {
			t.Errorf("%s: %d evaluations (bisection %d), want at most %d", c.name, n, nb, c.maxEvals)
		}
		t.Logf("%s: σ %.6f in %d evaluations (bisection %d)", c.name, got, n, nb)
	}
}

// bisectSigma is the search Calibrate did before smallestSigma: bisection
// of [lo, hi] to the same tolerance.
func bisectSigma(f func(float64) (float64, error), target, lo, hi float64) (float64, int) {
	n := 0
	for (hi-lo)/hi > 1e-4 {
		mid := (lo + hi) / 2
		e, err := f(mid)
		n++
		if err != nil || e > target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, n
}

// BenchmarkCalibratePLD calibrates the training job's noise (ε 8, δ 1e-6,
// q 0.4, 5 steps, after a histogram release) under PLD, by smallestSigma
// and by bisection (before) side by side, from the same RDP bracket.
func BenchmarkCalibratePLD(b *testing.B) {
	hist := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 4, Count: 1}
	spent := func(s float64) (float64, error) {
		r, err := Spent("pld", 1e-6, hist, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: s, Count: 5})
		return r.Epsilon, err
	}
	rdp, err := CalibrateWith("rdp", 8, 0.4, 5, 1e-6, hist)
	if err != nil {
		b.Fatal(err)
	}
	hi, lo := rdp.NoiseMultiplier, rdp.NoiseMultiplier/4
	epsHi, _ := spent(hi)
	epsLo, _ := spent(lo)
	b.Run("calibrate", func(b *testing.B) {
		for b.Loop() {
			memo.reset() // measure the compositions, not the memo
			if _, err := CalibrateWith("pld", 8, 0.4, 5, 1e-6, hist); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("search", func(b *testing.B) {
		for b.Loop() {
			memo.reset()
			smallestSigma(spent, 8, lo, hi, epsLo, epsHi)
		}
	})
	b.Run("before", func(b *testing.B) {
		for b.Loop() {
			memo.reset()
			bisectSigma(spent, 8, lo, hi)
		}
	})
}
