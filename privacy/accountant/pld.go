package accountant

import (
	"context"
	"fmt"
	"math"
	"math/cmplx"
	"sync"

	"golang.org/x/sync/semaphore"
	"gonum.org/v1/gonum/dsp/fourier"
)

// DefaultInterval is the default discretization interval of privacy losses,
// dp_accounting's value_discretization_interval.
const DefaultInterval = 1e-4

// tailMass bounds the probability mass dropped by truncation at each step,
// dp_accounting's tail_mass_truncation. It is added to the mass at infinity,
// so the reported ε stays an upper bound.
const tailMass = 1e-15

// maxBins bounds the size of one discretized distribution (128 MiB of
// float64s), so that absurd parameters fail instead of exhausting memory.
const maxBins = 1 << 24

// PLD is a privacy loss distribution accountant. Events are kept and
// composed when Epsilon is asked, for both the remove and the add
// direction of add-or-remove-one neighbouring.
type PLD struct {
	Interval float64 // discretization interval of losses
	events   []Event
	pure     float64 // Σ δ of PureDelta events
}

// NewPLD returns a PLD accountant with DefaultInterval.
func NewPLD() *PLD { return &PLD{Interval: DefaultInterval} }

// Name returns "pld".
func (a *PLD) Name() string { return "pld" }

// Compose adds e to the accountant.
func (a *PLD) Compose(e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Mechanism == PureDelta {
		a.pure += float64(e.Count) * e.Delta
		return nil
	}
	a.events = append(a.events, e)
	return nil
}

// Epsilon composes the events and returns the smallest ε whose δ is at most
// delta, the larger over the remove and add directions.
func (a *PLD) Epsilon(delta float64) (Result, error) {
	rest, ok, err := remainingDelta(delta, a.pure)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Accountant: "pld", Epsilon: math.Inf(1), Delta: delta}, nil
	}
	if !(a.Interval > 0) {
		return Result{}, fmt.Errorf("%w: discretization interval %v", ErrParam, a.Interval)
	}
	if mu, ok := gaussianOnly(a.events); ok {
		return Result{Accountant: "pld", Epsilon: gdpEpsilon(mu, rest), Delta: delta}, nil
	}
	// The two directions are independent compositions: one goroutine each.
	var eps [2]float64
	var errs [2]error
	var wg sync.WaitGroup
	for i, dir := range []direction{remove, add} {
		wg.Go(func() {
			composed, err := composePLD(a.events, dir, a.Interval)
			if err != nil {
				errs[i] = err
				return
			}
			eps[i] = composed.epsilonForDelta(rest, a.Interval)
		})
	}
	wg.Wait()
	for _, err := range errs { // the remove direction's first, as one line
		if err != nil {
			return Result{}, err
		}
	}
	return Result{Accountant: "pld", Epsilon: math.Max(0, math.Max(eps[0], eps[1])), Delta: delta}, nil
}

// composePLD is the composition of events in direction dir at interval h,
// from the memo when it holds it. Each event's self-composition is
// memoized too: calibration composes the same fixed releases with every σ
// it tries.
func composePLD(events []Event, dir direction, h float64) (pmf, error) {
	key := memoKey(dir, h, events...)
	if p, ok := memo.get(key); ok {
		return p, nil
	}
	composed := pmf{probs: []float64{1}} // the identity: loss 0 surely
	for _, e := range events {
		ekey := memoKey(dir, h, e)
		p, ok := memo.get(ekey)
		if !ok {
			var err error
			if p, err = eventPMF(e, dir, h); err != nil {
				return pmf{}, err
			}
			if p, err = p.selfCompose(e.Count); err != nil {
				return pmf{}, err
			}
			memo.put(ekey, p)
		}
		var err error
		if composed, err = composed.compose(p); err != nil {
			return pmf{}, err
		}
	}
	memo.put(key, composed)
	return composed, nil
}

// gaussianOnly reports whether every event is a Gaussian mechanism
// without subsampling (sampling rate 1), and if so the μ of their
// composition: each release of noise multiplier σ has the privacy loss
// distribution N(μ²/2, μ²) with μ = 1/σ, and composing them adds the μ²
// (Dong, Roth and Su 2019, Gaussian differential privacy: composition of
// Gaussian mechanisms is exactly μ-GDP with μ² = Σ 1/σ_i²). Nothing needs
// discretizing then.
func gaussianOnly(events []Event) (float64, bool) {
	mu2 := 0.0
	for _, e := range events {
		if e.Mechanism != SubsampledGaussian || e.SamplingRate != 1 {
			return 0, false
		}
		mu2 += float64(e.Count) / (e.NoiseMultiplier * e.NoiseMultiplier)
	}
	return math.Sqrt(mu2), len(events) > 0
}

// gdpDelta is the δ(ε) of μ-GDP, that of the Gaussian mechanism
// (Balle and Wang 2018, Theorem 8): Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ).
// Where the second term underflows it counts as 0, which overstates δ.
func gdpDelta(mu, eps float64) float64 {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	b := 0.0
	if p := phi(-mu/2 - eps/mu); p > 0 {
		b = math.Exp(eps + math.Log(p))
	}
	return math.Max(0, phi(mu/2-eps/mu)-b)
}

// gdpEpsilon is the smallest ε (to a relative 1e-12, rounding up)
// whose δ of μ-GDP is at most delta.
func gdpEpsilon(mu, delta float64) float64 {
	if gdpDelta(mu, 0) <= delta {
		return 0
	}
	lo, hi := 0.0, 1.0
	for gdpDelta(mu, hi) > delta {
		lo, hi = hi, 2*hi
		if hi > 1e6 {
			return math.Inf(1)
		}
	}
	for hi-lo > 1e-12*hi {
		mid := (lo + hi) / 2
		if gdpDelta(mu, mid) > delta {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

type direction int

const (
	remove direction = iota // μ_upper = M(D), μ_lower = M(D minus one subject)
	add                     // μ_upper = M(D), μ_lower = M(D plus one subject)
)

// pmf is a discretized privacy loss distribution: probs[i] is the
// probability of loss (lo+i)·interval, inf the probability of +∞.
type pmf struct {
	lo    int64
	probs []float64
	inf   float64
}

// eventPMF discretizes the privacy loss distribution of one release.
func eventPMF(e Event, dir direction, h float64) (pmf, error) {
	switch e.Mechanism {
	case SubsampledGaussian:
		return gaussianPMF(e.SamplingRate, e.NoiseMultiplier, dir, h)
	case DiscreteGaussian:
		s, d := e.Sigma, float64(e.Sensitivity)
		k := int64(math.Ceil(9*s)) + int64(e.Sensitivity)
		logW := func(x int64) float64 { return -float64(x*x) / (2 * s * s) }
		return discretePMF(k, logW, func(x int64) float64 { return (d*d - 2*float64(x)*d) / (2 * s * s) }, h)
	case DiscreteLaplace:
		b, d := e.Scale, float64(e.Sensitivity)
		k := int64(math.Ceil(40*b)) + int64(e.Sensitivity)
		logW := func(x int64) float64 { return -math.Abs(float64(x)) / b }
		return discretePMF(k, logW, func(x int64) float64 { return (math.Abs(float64(x)-d) - math.Abs(float64(x))) / b }, h)
	}
	return pmf{}, fmt.Errorf("%w: unknown mechanism %q", ErrParam, e.Mechanism)
}

// discretePMF builds the PLD of a symmetric additive noise on the integers
// in [-k, k] with log-weights logW, rounding losses up to the grid (the
// "privacy buckets" discretization, pessimistic). The noise mass outside
// [-k, k] goes to +∞. Discrete noise is symmetric, so the add and remove
// directions have the same PLD.
func discretePMF(k int64, logW func(int64) float64, loss func(int64) float64, h float64) (pmf, error) {
	var z float64
	for x := -k; x <= k; x++ {
		z += math.Exp(logW(x))
	}
	// Mass beyond ±k, bounded by the ratio of a tail term to the centre
	// (the weights decay at least geometrically past k).
	tail := 2 * math.Exp(logW(k)) / (1 - math.Exp(logW(k+1)-logW(k)))
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for x := -k; x <= k; x++ {
		i := int64(math.Ceil(loss(x)/h - 1e-9))
		lo, hi = min(lo, i), max(hi, i)
	}
	if hi-lo+1 > maxBins {
		return pmf{}, fmt.Errorf("%w: the loss range needs %d bins; use a larger interval", ErrParam, hi-lo+1)
	}
	p := pmf{lo: lo, probs: make([]float64, hi-lo+1), inf: tail / (z + tail)}
	for x := -k; x <= k; x++ {
		i := int64(math.Ceil(loss(x)/h - 1e-9))
		p.probs[i-lo] += math.Exp(logW(x)) / (z + tail)
	}
	return p, nil
}

// normCDF is Φ(z), accurate in the lower tail.
func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// normQuantile is Φ⁻¹(p).
func normQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// gaussianPMF builds the PLD of the Poisson-subsampled Gaussian with the
// pessimistic connect-the-dots discretization (Doroshenko, Ghazi, Kamath,
// Kumar, Manurangsi 2022, Algorithm 1, fixed gaps): the PMF on the grid whose
// hockey-stick curve equals the mechanism's at every grid point and lies
// above it in between. With noise N(0, σ²) and sensitivity 1 (dp_accounting's
// AdditiveNoisePrivacyLoss):
//
//	remove: μ_upper = (1-q)N(0,σ²) + qN(-1,σ²), μ_lower = N(0,σ²)
//	add:    μ_upper = N(0,σ²),  μ_lower = (1-q)N(0,σ²) + qN(1,σ²)
func gaussianPMF(q, sigma float64, dir direction, h float64) (pmf, error) {
	// Privacy loss at x, decreasing in x, and δ(ε) in closed form.
	s2 := sigma * sigma
	var loss func(x float64) float64
	var delta func(eps float64) float64
	var lowerX, upperX float64
	zTail := normQuantile(tailMass / 2) // about -8
	if dir == remove {
		loss = func(x float64) float64 {
			return math.Log((1 - q) + q*math.Exp((-2*x-1)/(2*s2)))
		}
		delta = func(eps float64) float64 {
			if q < 1 && eps <= math.Log1p(-q) {
				return -math.Expm1(eps)
			}
			x := -s2*math.Log((math.Exp(eps)-(1-q))/q) - 0.5
			return (1-q)*normCDF(x/sigma) + q*normCDF((x+1)/sigma) - math.Exp(eps)*normCDF(x/sigma)
		}
		lowerX, upperX = zTail*sigma-1, -zTail*sigma
	} else {
		loss = func(x float64) float64 {
			return -math.Log((1 - q) + q*math.Exp((2*x-1)/(2*s2)))
		}
		delta = func(eps float64) float64 {
			if q < 1 && eps >= -math.Log1p(-q) {
				return 0
			}
			x := s2*math.Log((math.Exp(-eps)-(1-q))/q) + 0.5
			return normCDF(x/sigma) - math.Exp(eps)*((1-q)*normCDF(x/sigma)+q*normCDF((x-1)/sigma))
		}
		lowerX, upperX = zTail*sigma, -zTail*sigma
	}
	epsHi, epsLo := loss(lowerX), loss(upperX)
	lo := int64(math.Floor(epsLo / h))
	hi := int64(math.Ceil(epsHi / h))
	if hi-lo+1 > maxBins {
		return pmf{}, fmt.Errorf("%w: noise multiplier %v needs %d loss bins; use a larger interval", ErrParam, sigma, hi-lo+1)
	}
	n := int(hi - lo + 1)
	deltas := make([]float64, n)
	for i := range deltas {
		d := delta(float64(lo+int64(i)) * h)
		deltas[i] = math.Min(1, math.Max(0, d))
		if i > 0 && deltas[i] > deltas[i-1] {
			deltas[i] = deltas[i-1] // δ(ε) is non-increasing; clear rounding
		}
	}
	p := pmf{lo: lo, probs: make([]float64, n), inf: deltas[n-1]}
	if n == 1 {
		p.probs[0] = 1 - deltas[0]
		return p, nil
	}
	em1, emm1, e := math.Expm1(h), math.Expm1(-h), math.Exp(h)
	p.probs[0] = 1 - deltas[0] + (deltas[1]-deltas[0])/em1
	for i := 1; i < n-1; i++ {
		p.probs[i] = ((deltas[i+1] - deltas[i]) - e*(deltas[i]-deltas[i-1])) / em1
	}
	p.probs[n-1] = (deltas[n-1] - deltas[n-2]) / emm1
	for i, v := range p.probs {
		p.probs[i] = math.Max(0, v)
	}
	return p, nil
}

// deltaForEpsilon is the hockey-stick divergence of the PMF at eps.
func (p pmf) deltaForEpsilon(eps, h float64) float64 {
	d := p.inf
	for i, v := range p.probs {
		if l := float64(p.lo+int64(i)) * h; l > eps {
			d += -math.Expm1(eps-l) * v
		}
	}
	return d
}

// epsilonForDelta is the smallest ε ≥ 0 with deltaForEpsilon(ε) ≤ delta
// (dp_accounting's _get_epsilon_for_delta), +Inf if the mass at infinity
// alone exceeds delta.
func (p pmf) epsilonForDelta(delta, h float64) float64 {
	if p.inf > delta {
		return math.Inf(1)
	}
	upper, lower := p.inf, 0.0
	for i := len(p.probs) - 1; i >= 0; i-- {
		l := float64(p.lo+int64(i)) * h
		if upper > delta && lower > 0 && math.Log((upper-delta)/lower) >= l {
			break
		}
		upper += p.probs[i]
		lower += math.Exp(-l) * p.probs[i]
		if upper >= delta && lower == 0 {
			return math.Max(0, l)
		}
	}
	if upper <= lower+delta {
		return 0
	}
	return math.Log((upper - delta) / lower)
}

// selfCompose returns the n-fold composition of p: the n-fold convolution,
// computed in one FFT over the support that Chernoff bounds leave after
// dropping at most tailMass on each side. The dropped mass (and what the
// cyclic convolution could fold) goes to +∞, so δ is never under-reported.
func (p pmf) selfCompose(n int) (pmf, error) {
	if n == 1 {
		return p, nil
	}
	m := len(p.probs)
	lower, upper := chernoffBounds(p.probs, n)
	size := upper - lower + 1
	if size > maxBins {
		return pmf{}, fmt.Errorf("%w: composing %d releases needs %d loss bins; use a larger interval", ErrParam, n, size)
	}
	fftLen := 1
	for fftLen < int(size) || fftLen < m {
		fftLen <<= 1
	}
	defer fftMemory.release(fftMemory.acquire(fftLen))
	seq := make([]float64, fftLen)
	copy(seq, p.probs)
	fft := getFFT(fftLen)
	defer putFFT(fft)
	coef := fft.Coefficients(nil, seq)
	for i, c := range coef {
		coef[i] = cmplx.Pow(c, complex(float64(n), 0))
	}
	out := fft.Sequence(nil, coef)
	res := pmf{lo: p.lo*int64(n) + lower, probs: make([]float64, size)}
	scale := 1 / float64(fftLen)
	for s := lower; s <= upper; s++ {
		v := out[int(s%int64(fftLen))] * scale
		res.probs[s-lower] = math.Max(0, v)
	}
	// Mass at infinity after n compositions: 1 - (1 - inf)^n.
	res.inf = -math.Expm1(float64(n)*math.Log1p(-p.inf)) + 2*tailMass
	return res, nil
}

// chernoffBounds returns [lower, upper] such that the sum of n draws from
// probs (values 0..len-1) lies outside with probability at most tailMass on
// each side (dp_accounting's compute_self_convolve_bounds, with more orders).
func chernoffBounds(probs []float64, n int) (int64, int64) {
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
		// log E[exp(t X)], with the largest exponent factored out: walk
		// from the end where t·i is largest, multiplying by exp(-|t|) per
		// step (one exp per order instead of one per value). The walk stops
		// once f < sum·2⁻⁵⁵: every later term, probs[i]·f with probs[i] ≤ 2
		// and f only falling, is below half an ulp of sum and would leave
		// it unchanged, so the bounds are exactly those of the whole walk.
		// Without the stop f sinks to the smallest subnormal, where
		// rounding keeps it (f·step rounds back up), and the rest of the
		// walk runs on subnormals, tens of times slower.
		var sum, maxE float64
		if t > 0 {
			maxE = t * float64(last)
			f, step := 1.0, math.Exp(-t)
			for i := last; i >= first && f > 0 && f >= sum*0x1p-55; i-- {
				sum += probs[i] * f
				f *= step
			}
		} else {
			maxE = t * float64(first)
			f, step := 1.0, math.Exp(t)
			for i := first; i <= last && f > 0 && f >= sum*0x1p-55; i++ {
				sum += probs[i] * f
				f *= step
			}
		}
		logMGF := math.Log(sum) + maxE
		bound := (float64(n)*logMGF + logTail) / t
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

// compose returns the composition of p and o: their convolution by FFT,
// with tails of at most tailMass moved pessimistically (the low tail to the
// lowest kept loss, the high tail to +∞).
func (p pmf) compose(o pmf) (pmf, error) {
	if len(p.probs) == 1 && p.probs[0] == 1 && p.lo == 0 && p.inf == 0 {
		return o, nil
	}
	n := len(p.probs) + len(o.probs) - 1
	if n > maxBins {
		return pmf{}, fmt.Errorf("%w: composition needs %d loss bins; use a larger interval", ErrParam, n)
	}
	fftLen := 1
	for fftLen < n {
		fftLen <<= 1
	}
	defer fftMemory.release(fftMemory.acquire(fftLen))
	a := make([]float64, fftLen)
	b := make([]float64, fftLen)
	copy(a, p.probs)
	copy(b, o.probs)
	fft := getFFT(fftLen)
	defer putFFT(fft)
	ca := fft.Coefficients(nil, a)
	cb := fft.Coefficients(nil, b)
	for i := range ca {
		ca[i] *= cb[i]
	}
	out := fft.Sequence(nil, ca)
	res := pmf{lo: p.lo + o.lo, probs: make([]float64, n)}
	for i := range res.probs {
		res.probs[i] = math.Max(0, out[i]/float64(fftLen))
	}
	res.inf = p.inf + o.inf - p.inf*o.inf
	// Truncate tails of at most tailMass/2 each.
	var left, right float64
	l, r := 0, len(res.probs)
	for l < r-1 && left+res.probs[l] <= tailMass/2 {
		left += res.probs[l]
		l++
	}
	for r-1 > l && right+res.probs[r-1] <= tailMass/2 {
		right += res.probs[r-1]
		r--
	}
	res.probs[l] += left
	res.inf += right
	res.lo += int64(l)
	res.probs = res.probs[l:r]
	return res, nil
}

// ffts holds FFT plans by length for reuse: a plan's twiddle factors cost
// about as much as a transform, and calibration transforms at the same few
// lengths many times. A plan is used by one goroutine at a time; the pools
// let the garbage collector drop idle plans.
var ffts sync.Map // int → *sync.Pool of *fourier.FFT

func getFFT(n int) *fourier.FFT {
	if p, ok := ffts.Load(n); ok {
		if f, ok := p.(*sync.Pool).Get().(*fourier.FFT); ok {
			return f
		}
	}
	return fourier.NewFFT(n)
}

func putFFT(f *fourier.FFT) {
	p, _ := ffts.LoadOrStore(f.Len(), &sync.Pool{})
	p.(*sync.Pool).Put(f)
}

// fftMemory bounds the length of the transforms in flight at once, and so
// the memory they hold: the directions and calibration's probes run
// concurrently, which must not multiply the peak memory of large
// compositions. Transforms that fit run side by side (configs/train.yaml's
// four at once use half of it); one longer than the budget runs alone, as
// every transform did before they ran concurrently.
var fftMemory = &fftBudget{sem: semaphore.NewWeighted(fftBudgetLen)}

// fftBudgetLen is the total length of transforms in flight (about 200 MiB
// of buffers in compose).
const fftBudgetLen = 1 << 22

type fftBudget struct{ sem *semaphore.Weighted }

// acquire waits until a transform of length n fits and returns its weight
// for release. Callers hold one weight at a time, so waiting cannot
// deadlock.
func (b *fftBudget) acquire(n int) int64 {
	w := min(int64(n), fftBudgetLen)
	_ = b.sem.Acquire(context.Background(), w) // fails only on a cancelled context
	return w
}

func (b *fftBudget) release(w int64) { b.sem.Release(w) }
