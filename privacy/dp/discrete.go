package dp

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
)

// The samplers below follow Canonne, Kamath and Steinke, "The Discrete
// Gaussian for Differential Privacy" (NeurIPS 2020), Algorithms 1-3. They use
// only exact rational arithmetic and uniform integers, so the output
// distribution is exactly the stated one: no floating-point rounding leaks
// through the least significant bits (Mironov 2012).

var bigOne = big.NewInt(1)

// uniformBig returns a uniform integer in [0, n) for n > 0.
func uniformBig(r *rand.Rand, n *big.Int) *big.Int {
	if n.IsUint64() {
		return new(big.Int).SetUint64(r.Uint64N(n.Uint64()))
	}
	// Rejection sampling on bit strings of n's length.
	bits := n.BitLen()
	words := make([]big.Word, (bits+63)/64)
	x := new(big.Int)
	for {
		for i := range words {
			words[i] = big.Word(r.Uint64())
		}
		if extra := len(words)*64 - bits; extra > 0 {
			words[len(words)-1] &= big.Word(^uint64(0) >> extra)
		}
		x.SetBits(words)
		if x.Cmp(n) < 0 {
			return new(big.Int).Set(x)
		}
	}
}

// bernoulli returns true with probability num/den (0 <= num <= den).
func bernoulli(r *rand.Rand, num, den *big.Int) bool {
	return uniformBig(r, den).Cmp(num) < 0
}

// bernoulliExp returns true with probability exp(-num/den), num/den >= 0
// (Algorithm 1 and its extension to gamma > 1).
func bernoulliExp(r *rand.Rand, num, den *big.Int) bool {
	if num.Cmp(den) <= 0 {
		// K = 1; while Bernoulli(gamma/K) { K++ }; return K odd.
		k := int64(1)
		kden := new(big.Int)
		for {
			kden.Mul(den, big.NewInt(k))
			if !bernoulli(r, num, kden) {
				break
			}
			k++
		}
		return k%2 == 1
	}
	// gamma > 1: exp(-gamma) = exp(-1)^floor(gamma) * exp(-(gamma-floor)).
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	for i := new(big.Int); i.Cmp(q) < 0; i.Add(i, bigOne) {
		if !bernoulliExp(r, bigOne, bigOne) {
			return false
		}
	}
	return bernoulliExp(r, rem, den)
}

// discreteLaplace samples Z with P[Z = z] proportional to exp(-|z| s/t)
// (Algorithm 2), for positive integers s and t.
func discreteLaplace(r *rand.Rand, s, t *big.Int) *big.Int {
	for {
		u := uniformBig(r, t)
		if !bernoulliExp(r, u, t) {
			continue
		}
		v := new(big.Int)
		for bernoulliExp(r, bigOne, bigOne) {
			v.Add(v, bigOne)
		}
		x := new(big.Int).Mul(t, v)
		x.Add(x, u)
		y := x.Quo(x, s)
		negative := r.Uint64()&1 == 1
		if negative && y.Sign() == 0 {
			continue
		}
		if negative {
			y.Neg(y)
		}
		return y
	}
}

// discreteGaussian samples Z with P[Z = z] proportional to
// exp(-z²/(2 sigma²)) where sigma² = num/den (Algorithm 3).
func discreteGaussian(r *rand.Rand, num, den *big.Int) *big.Int {
	// t = floor(sigma) + 1 with sigma = sqrt(num/den); floor(sqrt(x)) equals
	// the integer square root of floor(x).
	t := new(big.Int).Sqrt(new(big.Int).Quo(num, den))
	t.Add(t, bigOne)
	// gamma = (|Y| - sigma²/t)² / (2 sigma²) = (|Y| den t - num)² / (2 num den t²)
	gden := new(big.Int).Mul(num, den)
	gden.Mul(gden, t)
	gden.Mul(gden, t)
	gden.Lsh(gden, 1)
	for {
		y := discreteLaplace(r, bigOne, t)
		a := new(big.Int).Abs(y)
		a.Mul(a, den)
		a.Mul(a, t)
		a.Sub(a, num)
		a.Mul(a, a)
		if bernoulliExp(r, a, gden) {
			return y
		}
	}
}

// rational returns x as an exact fraction num/den of positive integers.
func rational(x float64) (num, den *big.Int) {
	q := new(big.Rat).SetFloat64(x)
	return new(big.Int).Set(q.Num()), new(big.Int).Set(q.Denom())
}

// DiscreteGaussian returns a sample of the discrete Gaussian with scale
// sigma: P[Z = z] is proportional to exp(-z²/(2 sigma²)) over the integers.
// sigma is taken exactly as its float64 value. Adding it to an integer count
// of sensitivity Δ is (Δ²/(2 sigma²))-zCDP.
func DiscreteGaussian(r *rand.Rand, sigma float64) (int64, error) {
	if err := CheckSigma(sigma); err != nil {
		return 0, err
	}
	if sigma > 1e12 {
		return 0, fmt.Errorf("%w: discrete Gaussian scale %v is too large", ErrParam, sigma)
	}
	num, den := rational(sigma)
	num.Mul(num, num)
	den.Mul(den, den)
	z := discreteGaussian(r, num, den)
	if !z.IsInt64() {
		return 0, fmt.Errorf("%w: sample out of range", ErrParam)
	}
	return z.Int64(), nil
}

// DiscreteLaplace returns a sample of the discrete Laplace with scale b:
// P[Z = z] is proportional to exp(-|z|/b). Adding it to an integer count of
// sensitivity Δ is (Δ/b)-DP.
func DiscreteLaplace(r *rand.Rand, scale float64) (int64, error) {
	if err := CheckSigma(scale); err != nil {
		return 0, err
	}
	if scale > 1e12 {
		return 0, fmt.Errorf("%w: discrete Laplace scale %v is too large", ErrParam, scale)
	}
	// exp(-|z|/b) = exp(-|z| s/t) with b = t/s.
	t, s := rational(scale)
	z := discreteLaplace(r, s, t)
	if !z.IsInt64() {
		return 0, fmt.Errorf("%w: sample out of range", ErrParam)
	}
	return z.Int64(), nil
}

// DiscreteGaussianVariance returns the exact variance of the discrete
// Gaussian with scale sigma, summed to double precision (for tests and
// documentation of the noise a count carries).
func DiscreteGaussianVariance(sigma float64) float64 {
	var z, v float64
	limit := int(math.Ceil(sigma*40)) + 1
	for x := -limit; x <= limit; x++ {
		w := math.Exp(-float64(x*x) / (2 * sigma * sigma))
		z += w
		v += float64(x*x) * w
	}
	return v / z
}
