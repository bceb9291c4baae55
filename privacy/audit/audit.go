// Package audit turns the outcome of a privacy audit into an empirical
// lower bound on ε: the one-run audit of Steinke, Nasr and Jagielski (2023,
// "Privacy Auditing with One (1) Training Run"), in which m canaries are
// each included independently with probability ½ and an auditor guesses,
// for r of them, whether they were included.
package audit

import (
	"errors"
	"fmt"
	"math"
)

// ErrParam reports audit counts that do not make sense.
var ErrParam = errors.New("invalid audit parameters")

// PValue is the probability, for an (ε, δ)-DP mechanism, of at least v
// correct guesses out of r among m canaries (Steinke et al. 2023, Theorem
// 5.2, as in the authors' reference code): P[Binomial(r, q) ≥ v] + 2mδ·α,
// with q = e^ε/(1+e^ε) and α = max over i of P[v > Binomial(r, q) ≥ v−i]/i.
func PValue(m, r, v int, eps, delta float64) (float64, error) {
	if !(0 <= v && v <= r && r <= m) || !(eps >= 0) || !(delta >= 0 && delta <= 1) {
		return 0, fmt.Errorf("%w: m %d, r %d, v %d, ε %v, δ %v", ErrParam, m, r, v, eps, delta)
	}
	q := 1 / (1 + math.Exp(-eps))
	beta := 0.0
	for k := v; k <= r; k++ {
		beta += binomPMF(r, k, q)
	}
	alpha, sum := 0.0, 0.0
	for i := 1; i <= v; i++ {
		sum += binomPMF(r, v-i, q)
		if sum > float64(i)*alpha {
			alpha = sum / float64(i)
		}
	}
	return math.Min(1, beta+alpha*delta*2*float64(m)), nil
}

// EpsilonLowerBound returns the largest ε (to 2^-30 of the search bracket)
// for which v correct guesses out of r would have p-value below p under
// (ε, δ)-DP: with confidence 1−p the mechanism is not (ε', δ)-DP for any
// ε' below it. Zero means the audit found nothing.
func EpsilonLowerBound(m, r, v int, delta, p float64) (float64, error) {
	if !(p > 0 && p < 1) {
		return 0, fmt.Errorf("%w: p %v must be in (0, 1)", ErrParam, p)
	}
	pv := func(eps float64) float64 {
		x, _ := PValue(m, r, v, eps, delta)
		return x
	}
	if _, err := PValue(m, r, v, 0, delta); err != nil {
		return 0, err
	}
	lo, hi := 0.0, 1.0
	for pv(hi) < p {
		hi++
		if hi > 100 {
			return hi, nil
		}
	}
	for range 30 {
		mid := (lo + hi) / 2
		if pv(mid) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// binomPMF is P[Binomial(n, q) = k], through log-gamma.
func binomPMF(n, k int, q float64) float64 {
	if k < 0 || k > n {
		return 0
	}
	switch q {
	case 0:
		if k == 0 {
			return 1
		}
		return 0
	case 1:
		if k == n {
			return 1
		}
		return 0
	}
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(ln - lk - lnk + float64(k)*math.Log(q) + float64(n-k)*math.Log1p(-q))
}
