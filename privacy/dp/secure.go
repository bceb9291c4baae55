package dp

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
)

// Secure Gaussian noise for float values (Mironov, "On significance of the
// least significant bits for differential privacy", CCS 2012).
//
// A floating-point Gaussian sample added to a float value leaks the value
// through the low-order bits of the sum: which floats x + noise can reach
// depends on x. The mechanism below is the one Google's differential
// privacy library uses ("secure noise generation"), with an exact integer
// sampler:
//
//  1. A granularity g, a power of two, is derived from σ alone:
//     g = 2^(⌊log₂ σ⌋ − granularityBits), so that σ/g ∈ [2^18, 2^19).
//  2. Each value x is rounded to the nearest multiple of g (clamped to
//     ±2^52 g, where every multiple of g is an exact float64).
//  3. An integer Z is drawn from the discrete Gaussian N_Z(0, s²) with the
//     integer scale s ≥ σ'/g (below), exactly (Canonne, Kamath and Steinke
//     2020, Algorithm 3, in integer arithmetic), and the output is
//     g·(round(x/g) + Z): an exact multiple of g whose bits depend on x
//     only through round(x/g).
//
// Accounting. Rounding moves each coordinate by at most g/2, so two
// neighbouring inputs whose difference has L2 norm ≤ Δ round to lattice
// points whose difference has L2 norm ≤ Δ + g√d (d coordinates): rounding
// changes the sensitivity by at most one granularity unit per coordinate.
// The noise scale is raised to σ' = σ·(Δ + g√d)/Δ, so that the ratio of
// noise to the rounded sensitivity, s·g/(Δ + g√d) ≥ σ/Δ, is at least the
// noise multiplier the accountant was given. The discrete Gaussian's Rényi
// divergence under a lattice shift μ is at most α‖μ‖²/(2s²), that of the
// continuous Gaussian (Canonne et al. 2020: the same concentrated-DP bound,
// adding up over independent coordinates), so the unsampled releases (the item histogram, DP k-means' sums and
// counts) are accounted exactly as the continuous Gaussian mechanism.
// For DP-SGD (Poisson subsampling) the accountant's continuous-Gaussian
// privacy loss is evaluated on a lattice of spacing 1/s ≤ 2^-18 of σ: at
// that scale the discrete Gaussian's pmf is the continuous density times g
// to within a relative error of about exp(-2π²s²) (Poisson summation), a
// negligible gap, which the accountant does not add to δ.

// granularityBits is log₂ of σ/g (up to a factor 2): large enough that the
// rounding costs nothing measurable (g√d is 2^-18·√d of σ), small enough
// that the integer sampler works in 128-bit arithmetic.
const granularityBits = 18

// secureScale is the lattice and the integer noise scale of one release.
type secureScale struct {
	g     float64 // granularity, a power of two
	s     uint64  // integer scale of the discrete Gaussian, in units of g
	limit float64 // values are clamped to ±limit (2^52 g)
}

// newSecureScale returns the scale of a release of d values of L2
// sensitivity sensitivity with noise N(0, sigma²): see the accounting
// note above.
func newSecureScale(sigma, sensitivity float64, d int) secureScale {
	switch {
	case sigma == 0:
		return secureScale{} // no noise: the white-box audit's faults only
	case !(sigma > 0) || math.IsInf(sigma, 0):
		// Callers check their σ (CheckSigma) before any data is read.
		panic(fmt.Sprintf("dp: Gaussian noise scale %v", sigma))
	}
	_, e := math.Frexp(sigma) // sigma = f·2^e, f ∈ [0.5, 1)
	g := math.Ldexp(1, e-1-granularityBits)
	inflated := sigma
	if sensitivity > 0 {
		inflated = sigma * (sensitivity + g*math.Sqrt(float64(d))) / sensitivity
	}
	return secureScale{g: g, s: uint64(math.Ceil(inflated / g)), limit: math.Ldexp(g, 52)}
}

// sigma is the scale of the noise actually added (s·g ≥ the σ asked for).
func (sc secureScale) sigma() float64 { return float64(sc.s) * sc.g }

// NoiseScale is the standard deviation of the noise that Gaussian and
// GaussianParallel add to d values of L2 sensitivity sensitivity when
// asked for sigma: sigma raised to σ(Δ + g√d)/Δ, then up to a multiple of
// g = Granularity(sigma), so that the noise covers the lattice rounding's
// sensitivity increase (see the accounting note above). It is what an
// audit that observes the noise must expect: it exceeds sigma by at most
// 2^-18·√d·sigma/Δ relative, which at a million coordinates is 0.1-1% of
// variance, enough for a two-sided test over that many values to detect. The privacy claim rests
// on sigma/sensitivity, the accountant's noise multiplier, which the
// raised scale keeps for the rounded sensitivity. Zero sigma gives 0 (no
// noise); sigma must otherwise be positive and finite (CheckSigma).
func NoiseScale(sigma, sensitivity float64, d int) float64 {
	return newSecureScale(sigma, sensitivity, d).sigma()
}

// add rounds every value of dst to the lattice and adds the lattice noise.
// A zero scale (σ = 0: no noise, as the white-box audit's faults ask)
// leaves dst as it is.
func (sc secureScale) add(dst []float64, r *rand.Rand) {
	if sc.s == 0 {
		return
	}
	for i, x := range dst {
		x = math.Max(-sc.limit, math.Min(sc.limit, x))
		m := math.RoundToEven(x / sc.g) // exact: g is a power of two
		dst[i] = (m + float64(discreteGaussianScale(r, sc.s))) * sc.g
	}
}

// Granularity is the lattice spacing of Gaussian's output for noise
// of scale sigma: the power of two 2^(⌊log₂ sigma⌋ − 18).
func Granularity(sigma float64) float64 { return newSecureScale(sigma, 0, 0).g }

// discreteGaussianScale samples the discrete Gaussian with integer scale
// s ≥ 1: P[Z = z] ∝ exp(−z²/(2s²)). It is Algorithm 3 of Canonne, Kamath
// and Steinke (2020) in uint64 and 128-bit arithmetic, exact (uniform
// integers and comparisons only), falling back to math/big for the rare
// candidates whose arithmetic would overflow.
func discreteGaussianScale(r *rand.Rand, s uint64) int64 {
	if s > 1<<30 {
		bs := new(big.Int).SetUint64(s)
		return discreteGaussian(r, bs.Mul(bs, bs), big.NewInt(1)).Int64()
	}
	t := s + 1 // ⌊σ⌋ + 1
	ss := s * s
	st := s * t
	// γ = (|Y| t − s²)² / (2 s² t²)
	den := u128Mul(st, st)
	den = den.shl1()
	for {
		y := discreteLaplaceT(r, t)
		a := uint64(y)
		if y < 0 {
			a = uint64(-y)
		}
		hi, at := bits.Mul64(a, t)
		if hi != 0 || at >= 1<<63 {
			// |Y| beyond 2^63/t: accept with the exact big-integer test.
			num := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(t))
			num.Sub(num, new(big.Int).SetUint64(ss))
			num.Mul(num, num)
			if bernoulliExp(r, num, den.big()) {
				return y
			}
			continue
		}
		var diff uint64
		if at >= ss {
			diff = at - ss
		} else {
			diff = ss - at
		}
		if bernoulliExp128(r, u128Mul(diff, diff), den) {
			return y
		}
	}
}

// discreteLaplaceT samples P[Y = y] ∝ exp(−|y|/t) (Algorithm 2 with s = 1).
func discreteLaplaceT(r *rand.Rand, t uint64) int64 {
	for {
		u := r.Uint64N(t)
		if !bernoulliExp64(r, u, t) {
			continue
		}
		var v uint64
		for bernoulliExp64(r, 1, 1) {
			v++
		}
		x := u + t*v
		negative := r.Uint64()&1 == 1
		if negative && x == 0 {
			continue
		}
		if negative {
			return -int64(x)
		}
		return int64(x)
	}
}

// bernoulliExp64 returns true with probability exp(−num/den), for
// 0 ≤ num ≤ den < 2^40 (Algorithm 1).
func bernoulliExp64(r *rand.Rand, num, den uint64) bool {
	k := uint64(1)
	for r.Uint64N(den*k) < num {
		k++
	}
	return k%2 == 1
}

// bernoulliExp128 returns true with probability exp(−num/den) (Algorithm
// 1, and exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)) for γ > 1).
func bernoulliExp128(r *rand.Rand, num, den u128) bool {
	if den.less(num) {
		q, rem, ok := num.divmod(den)
		if !ok {
			return bernoulliExp(r, num.big(), den.big())
		}
		for range q {
			if !bernoulliExp64(r, 1, 1) {
				return false
			}
		}
		num = rem
	}
	// K = 1; while Bernoulli(γ/K) { K++ }; return K odd.
	k := uint64(1)
	for {
		dk, ok := den.mul64(k)
		if !ok {
			return bernoulliExp(r, num.big(), den.big())
		}
		if !uniform128(r, dk).less(num) {
			break
		}
		k++
	}
	return k%2 == 1
}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func u128Mul(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (x u128) shl1() u128 { return u128{x.hi<<1 | x.lo>>63, x.lo << 1} }

func (x u128) less(y u128) bool { return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo) }

// mul64 returns x·k and whether it fits in 128 bits.
func (x u128) mul64(k uint64) (u128, bool) {
	h1, l1 := bits.Mul64(x.lo, k)
	h2, l2 := bits.Mul64(x.hi, k)
	hi, c := bits.Add64(h1, l2, 0)
	return u128{hi, l1}, h2 == 0 && c == 0
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

// divmod returns ⌊x/y⌋ and x mod y for a quotient below 2^16 (ok false
// otherwise), by estimate and exact correction.
func (x u128) divmod(y u128) (q uint64, rem u128, ok bool) {
	est := x.float() / y.float()
	if !(est < 1<<16) {
		return 0, u128{}, false
	}
	q = uint64(est)
	if q > 0 {
		q--
	}
	p, _ := y.mul64(q) // q < 2^16 and y ≤ x: no overflow
	rem = x.sub(p)
	for !rem.less(y) {
		rem = rem.sub(y)
		q++
	}
	return q, rem, true
}

func (x u128) float() float64 { return math.Ldexp(float64(x.hi), 64) + float64(x.lo) }

func (x u128) big() *big.Int {
	b := new(big.Int).SetUint64(x.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(x.lo))
}

// uniform128 returns a uniform integer in [0, n) for n > 0.
func uniform128(r *rand.Rand, n u128) u128 {
	if n.hi == 0 {
		return u128{0, r.Uint64N(n.lo)}
	}
	mask := ^uint64(0) >> bits.LeadingZeros64(n.hi)
	for {
		x := u128{r.Uint64() & mask, r.Uint64()}
		if x.less(n) {
			return x
		}
	}
}
