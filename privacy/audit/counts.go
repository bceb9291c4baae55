package audit

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/dp"
)

// The checks of the discrete Gaussian audit, by name.
const (
	CheckCountScale = "noise_scale"
	CheckCountMean  = "noise_mean"
	CheckCountPMF   = "noise_pmf"
)

// DiscreteGaussian audits the discrete Gaussian that noises integer counts
// of sensitivity 1 (cohort sizes): draw is the mechanism's own sampler at
// its planned scale sigma (dp.DiscreteGaussian over the secure source in
// production), called n times. The scale is estimated from the second
// moment (mean 0 known) with a normal interval on the mean of z² (its
// variance from the sample's fourth moment; n is large), mapped to σ
// through the exact variance of the discrete Gaussian; the lower bound on ε
// is the PLD accountant's ε of the discrete Gaussian at the upper end of
// σ's interval (a count's sensitivity is 1 by construction: adding a
// subject adds 1 to one count). Checks: the scale, the mean, and a
// chi-square test of the draws against the exact pmf at sigma.
func DiscreteGaussian(draw func() (int64, error), sigma float64, n int, delta, confidence, falseAlarm float64) (*Report, error) {
	if err := dp.CheckSigma(sigma); err != nil {
		return nil, err
	}
	if n < 1000 || !(confidence > 0.5 && confidence < 1) || !(falseAlarm > 0 && falseAlarm < 0.5) {
		return nil, fmt.Errorf("%w: %d draws, confidence %v, false alarm %v", ErrParam, n, confidence, falseAlarm)
	}
	start := time.Now()
	// The exact pmf at sigma, over |z| ≤ k where the tails beyond carry
	// less than 1e-12.
	k := int64(math.Ceil(8*sigma)) + 2
	pmf := make([]float64, 2*k+1)
	var zsum float64
	for x := -k; x <= k; x++ {
		pmf[x+k] = math.Exp(-float64(x*x) / (2 * sigma * sigma))
		zsum += pmf[x+k]
	}
	for i := range pmf {
		pmf[i] /= zsum
	}
	hist := make([]float64, 2*k+3) // [0]: below -k, [last]: above k
	var s1, s2, s4 float64
	for range n {
		z, err := draw()
		if err != nil {
			return nil, fmt.Errorf("auditing the discrete Gaussian: %w", err)
		}
		v := float64(z)
		s1 += v
		s2 += v * v
		s4 += v * v * v * v
		hist[min(max(z, -k-1), k+1)+k+1]++
	}
	nf := float64(n)
	vHat := s2 / nf
	se := math.Sqrt(math.Max(s4/nf-vHat*vHat, 0) / nf)
	vPlan := dp.DiscreteGaussianVariance(sigma)
	chk := NewChecks(falseAlarm, 3)
	chk.Add(CheckCountScale, TwoSided((vHat-vPlan)/se), "variance %.5g, the plan's %.5g (σ %.4g): σ̂ %.4g", vHat, vPlan, sigma, scaleOf(vHat, sigma))
	chk.Add(CheckCountMean, TwoSided(s1/nf/math.Sqrt(vPlan/nf)), "mean %.3g", s1/nf)
	// χ² against the exact pmf, bins merged from the tails inward until
	// each expects at least 5.
	var x2 float64
	var bins int
	var obs, exp float64
	flush := func() {
		x2 += (obs - exp) * (obs - exp) / exp
		bins++
		obs, exp = 0, 0
	}
	obs += hist[0] // below -k: merged into the first bin
	var mass float64
	for i := range pmf {
		obs += hist[i+1]
		exp += pmf[i] * nf
		mass += pmf[i]
		if i == len(pmf)-1 {
			obs += hist[len(hist)-1]
		}
		if exp >= 5 && (1-mass)*nf >= 5 || i == len(pmf)-1 {
			flush()
		}
	}
	pGOF := 1 - distuv.ChiSquared{K: float64(bins - 1)}.CDF(x2)
	chk.Add(CheckCountPMF, pGOF, "χ² %.4g over %d bins against the exact pmf at σ %.4g", x2, bins, sigma)

	miss := 1 - confidence
	vLo, vHi := vHat+ZQuantile(miss)*se, vHat-ZQuantile(miss)*se
	sHi := scaleOf(vHi, sigma)
	eps, err := DiscreteGaussianBound(sHi, delta)
	if err != nil {
		return nil, err
	}
	proven, err := accountant.Spent("pld", delta, accountant.Event{Mechanism: accountant.DiscreteGaussian, Sigma: sigma, Sensitivity: 1, Count: 1})
	if err != nil {
		return nil, err
	}
	return &Report{
		Mechanism: "noisy counts (discrete Gaussian)",
		Method:    fmt.Sprintf("white-box: %d draws of the sampler; ε of the largest σ in the %.0f%% confidence interval, PLD accountant", n, 100*confidence),
		Runs:      1, Releases: 1, Observations: int64(n),
		Estimates: []Estimate{
			{Name: "sigma", Value: scaleOf(vHat, sigma), Lo: scaleOf(vLo, sigma), Hi: sHi, Plan: sigma},
			{Name: "sensitivity", Value: 1, Lo: 1, Hi: 1, Plan: 1},
		},
		EpsilonLowerBound: eps, ProvenEpsilon: proven.Epsilon, Delta: delta, Confidence: confidence, FalseAlarm: falseAlarm,
		Checks: chk.List(), Seconds: time.Since(start).Seconds(),
	}, nil
}

// scaleOf is the σ whose discrete Gaussian has variance v (the variance
// grows with σ), found by bisection around guess.
func scaleOf(v, guess float64) float64 {
	if !(v > 0) {
		return 0
	}
	lo, hi := 1e-3, math.Max(2*guess, 2*math.Sqrt(v))+1
	for range 60 {
		mid := (lo + hi) / 2
		if dp.DiscreteGaussianVariance(mid) < v {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
