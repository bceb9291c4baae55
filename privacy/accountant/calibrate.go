package accountant

import (
	"fmt"
	"math"
	"sync"
)

// Noise multipliers Calibrate searches between.
const (
	MinNoiseMultiplier = 0.05
	MaxNoiseMultiplier = 1000
)

// Calibration is the result of Calibrate.
type Calibration struct {
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Epsilon         float64 `json:"epsilon"` // what the noise multiplier spends; never above the target
}

// Calibrate returns the smallest noise multiplier (to a relative tolerance
// of 1e-4, rounding up) for which steps Poisson-subsampled Gaussian releases
// at sampling rate q spend at most targetEps at delta under the named
// accountant. It fails with ErrUnreachable when even MaxNoiseMultiplier is
// not enough.
func Calibrate(name string, targetEps, q float64, steps int, delta float64) (Calibration, error) {
	return CalibrateWith(name, targetEps, q, steps, delta)
}

// CalibrateWith is Calibrate for steps composed with other releases of the
// same run (fixed, planned beforehand): the returned noise multiplier makes
// all of them together spend at most targetEps at delta.
func CalibrateWith(name string, targetEps, q float64, steps int, delta float64, fixed ...Event) (Calibration, error) {
	if !(targetEps > 0) || math.IsInf(targetEps, 0) {
		return Calibration{}, fmt.Errorf("%w: target epsilon %v must be positive and finite", ErrParam, targetEps)
	}
	spent := func(sigma float64) (float64, error) {
		evs := append(fixed[:len(fixed):len(fixed)], Event{Mechanism: SubsampledGaussian, SamplingRate: q, NoiseMultiplier: sigma, Count: steps})
		r, err := Spent(name, delta, evs...)
		return r.Epsilon, err
	}
	// Validate the rest of the parameters once.
	if err := (Event{Mechanism: SubsampledGaussian, SamplingRate: q, NoiseMultiplier: 1, Count: steps}).Validate(); err != nil {
		return Calibration{}, err
	}
	if err := CheckDelta(delta); err != nil {
		return Calibration{}, err
	}
	hi := float64(MaxNoiseMultiplier)
	lo := float64(MinNoiseMultiplier)
	shrink := 0.0 // > 0: lo starts at hi·shrink, and moves down until it overshoots
	if name == "pld" {
		// RDP is looser than PLD, so RDP's answer is enough for PLD: start
		// the bracket there (PLD evaluations are the costly ones), with lo
		// a little below it, where PLD's answer usually is, rather than far
		// below, where a composition is larger and the interpolation poorer.
		c, err := CalibrateWith("rdp", targetEps, q, steps, delta, fixed...)
		if err == nil {
			// A discretized composition is costly: search on a coarse one
			// first. Plain Gaussians alone are composed in closed form
			// (gaussianOnly), which no discretization speeds up.
			evs := []Event{{Mechanism: SubsampledGaussian, SamplingRate: q, NoiseMultiplier: 1, Count: steps}}
			for _, e := range fixed {
				if e.Mechanism != PureDelta {
					evs = append(evs, e)
				}
			}
			if _, exact := gaussianOnly(evs); !exact {
				coarse, fine := pldSpent(coarseFactor*DefaultInterval, q, steps, delta, fixed), pldSpent(DefaultInterval, q, steps, delta, fixed)
				if c, ok := twoPhase(coarse, fine, targetEps, c.NoiseMultiplier); ok {
					return c, nil
				}
			}
			hi, shrink = c.NoiseMultiplier, 0.8
			lo = math.Max(MinNoiseMultiplier, hi*shrink)
		}
	}
	return calibrate(spent, targetEps, delta, lo, hi, shrink)
}

// calibrate is the search of CalibrateWith on spent, from the bracket
// [lo, hi]; shrink as there.
func calibrate(spent func(float64) (float64, error), targetEps, delta, lo, hi, shrink float64) (Calibration, error) {
	epsHi, err := spent(hi)
	if err != nil {
		return Calibration{}, err
	}
	if epsHi > targetEps {
		return Calibration{}, fmt.Errorf("%w: ε %.4g at δ %g needs a noise multiplier above %g (at %g it is %.4g); lower the steps or the sampling rate, or raise ε",
			ErrUnreachable, targetEps, delta, hi, hi, epsHi)
	}
	var epsLo float64
	for {
		epsLo, err = spent(lo)
		if err != nil {
			// The cheapest noise may need too many bins (PLD); treat as too low.
			epsLo = math.Inf(1)
		}
		if epsLo > targetEps {
			break
		}
		if shrink == 0 || lo == MinNoiseMultiplier {
			return Calibration{NoiseMultiplier: lo, Epsilon: epsLo}, nil
		}
		hi, epsHi = lo, epsLo
		lo = math.Max(MinNoiseMultiplier, lo*shrink*shrink)
	}
	sigma, eps, _ := smallestSigma(spent, targetEps, lo, hi, epsLo, epsHi)
	return Calibration{NoiseMultiplier: sigma, Epsilon: eps}, nil
}

// smallestSigma narrows the bracket lo < hi, with spent(lo) = epsLo above
// target and spent(hi) = epsHi at most target, until (hi-lo)/hi ≤ 1e-4
// (calibrateTol),
// and returns hi, its ε and the number of evaluations of spent.
//
// ε falls smoothly with σ, nearly a power law, so each step estimates the
// root by interpolating log ε linearly in log σ between the bracket's ends,
// and probes a third of the tolerance beside the estimate, on the side
// opposite the end that moved last: a good estimate then moves both ends
// to within the tolerance in two evaluations. A probe that would not fall
// inside the bracket, or an end with a failed evaluation, bisects instead.
// Whatever the probes, the bracket only shrinks, so the answer spends at
// most target and is within the tolerance of the smallest that does: the
// same answer bisection gives, in a third of its evaluations (each is a
// whole PLD composition).
func smallestSigma(spent func(float64) (float64, error), target, lo, hi, epsLo, epsHi float64) (sigma, eps float64, evals int) {
	return searchSigma(spent, target, lo, hi, epsLo, epsHi, calibrateTol)
}

// calibrateTol is the relative tolerance of Calibrate's noise multiplier.
const calibrateTol = 1e-4

// searchSigma is smallestSigma to the relative tolerance tol.
func searchSigma(spent func(float64) (float64, error), target, lo, hi, epsLo, epsHi, tol float64) (sigma, eps float64, evals int) {
	logT := math.Log(target)
	// f(x) = log spent(e^x) - log target: positive at lo, ≤ 0 at hi.
	fLo, fHi := math.Log(epsLo)-logT, math.Log(epsHi)-logT
	eps = epsHi
	up := true // the next probe aims above the estimated root
	for (hi-lo)/hi > tol {
		probe := (lo + hi) / 2
		if !math.IsInf(fLo, 0) && !math.IsNaN(fLo) && fLo > fHi {
			xLo, xHi := math.Log(lo), math.Log(hi)
			est := math.Exp(xHi - fHi*(xHi-xLo)/(fHi-fLo))
			if up {
				est *= 1 + tol/3
			} else {
				est *= 1 - tol/3
			}
			if est > lo && est < hi {
				probe = est
			}
		}
		e, err := spent(probe)
		evals++
		if err != nil || e > target {
			lo, fLo, up = probe, math.Inf(1), true
			if err == nil {
				fLo = math.Log(e) - logT
			}
		} else {
			hi, eps, fHi, up = probe, e, math.Log(e)-logT, false
		}
	}
	return hi, eps, evals
}

// coarseFactor is how much coarser than DefaultInterval the losses are
// discretized while twoPhase searches: a PLD evaluation costs about
// in proportion to its bins, and the coarse ε(σ) stays close to the fine
// one (for configs/train.yaml's schedule, 8e-7 relative at ε 8, where
// 1e-4 of σ moves ε by 1.1e-4).
const coarseFactor = 20

// pldSpent is the ε at delta of the fixed events and steps releases of
// noise multiplier σ, under PLD at interval h.
func pldSpent(h, q float64, steps int, delta float64, fixed []Event) func(float64) (float64, error) {
	return func(sigma float64) (float64, error) {
		a := &PLD{Interval: h}
		for _, e := range append(fixed[:len(fixed):len(fixed)], Event{Mechanism: SubsampledGaussian, SamplingRate: q, NoiseMultiplier: sigma, Count: steps}) {
			if err := a.Compose(e); err != nil {
				return 0, err
			}
		}
		r, err := a.Epsilon(delta)
		return r.Epsilon, err
	}
}

// twoPhase is CalibrateWith under PLD in two phases. It searches the root
// of coarse, ε(σ) at coarseFactor·DefaultInterval, from the RDP answer
// rdpSigma down, to a sixteenth of the tolerance; then it brackets the
// root of fine, ε(σ) at DefaultInterval, by the coarse answer and half the
// tolerance below it (both evaluated at once, on two cores), then, if that
// pair misses, by pairs around the root the coarse slope predicts, then by
// a walk of growing steps, and narrows the bracket with smallestSigma. Every decision about the answer
// is taken on fine evaluations only: it spends at most target at full
// precision, a relative 1e-4 less noise would not, and its ε is that of
// the fine evaluation, which Spent then gives bit for bit (the memo).
// Where the coarse search fails or the walk leaves [0.8 × the coarse
// answer, rdpSigma], ok is false and CalibrateWith searches on fine
// evaluations alone, as before.
func twoPhase(coarse, fine func(float64) (float64, error), target, rdpSigma float64) (c Calibration, ok bool) {
	tooLow := func(eps float64, err error) bool { return err != nil || eps > target }

	// Coarse: the bracket from rdpSigma down, as in calibrate.
	hi := rdpSigma
	epsHi, err := coarse(hi)
	if tooLow(epsHi, err) {
		return Calibration{}, false
	}
	var lo, epsLo float64
	for lo = hi * 0.8; ; lo *= 0.8 * 0.8 {
		if lo < MinNoiseMultiplier {
			return Calibration{}, false
		}
		if epsLo, err = coarse(lo); tooLow(epsLo, err) {
			if err != nil {
				epsLo = math.Inf(1)
			}
			break
		}
		hi, epsHi = lo, epsLo
	}
	// The slope of log ε in log σ over the coarse bracket: ε(σ) is nearly
	// a power law, and the fine curve nearly the coarse one times a
	// constant, so from a fine evaluation it predicts the fine root.
	slope := (math.Log(epsLo) - math.Log(epsHi)) / (math.Log(lo) - math.Log(hi))
	guess, _, _ := searchSigma(coarse, target, lo, hi, epsLo, epsHi, calibrateTol/16)

	// Fine: evaluate pairs of probes at once (two cores), first the guess
	// and half the tolerance below it, then, at most twice while no pair
	// brackets the root, a third of the tolerance either side of the
	// root predicted from the evaluation nearest it.
	floor := guess * 0.8
	type point struct {
		sigma, eps float64
		err        error
	}
	var pts []point
	pair := func(a, b float64) {
		pa, pb := point{sigma: a}, point{sigma: b}
		var wg sync.WaitGroup
		wg.Go(func() { pa.eps, pa.err = fine(a) })
		pb.eps, pb.err = fine(b)
		wg.Wait()
		pts = append(pts, pa, pb)
	}
	// bracket: the largest σ evaluated that spends too much, the
	// smallest that does not.
	bracket := func() (lo, hi point, okLo, okHi bool) {
		for _, p := range pts {
			if tooLow(p.eps, p.err) {
				if !okLo || p.sigma > lo.sigma {
					lo, okLo = p, true
				}
			} else if !okHi || p.sigma < hi.sigma {
				hi, okHi = p, true
			}
		}
		return lo, hi, okLo, okHi
	}
	pair(guess*(1-calibrateTol/2), guess)
	for range 2 {
		pLo, pHi, okLo, okHi := bracket()
		var est float64
		switch {
		case okLo && okHi:
			break
		case !okHi && pLo.err == nil: // the root is above every probe
			est = math.Max(pLo.sigma*math.Pow(target/pLo.eps, 1/slope), pLo.sigma*(1+calibrateTol))
		case !okLo: // the root is below every probe
			est = math.Min(pHi.sigma*math.Pow(target/pHi.eps, 1/slope), pHi.sigma*(1-calibrateTol))
		}
		if !(est > 0) || math.IsInf(est, 0) || !(slope < 0) {
			break
		}
		est = math.Min(rdpSigma/(1+calibrateTol/3), math.Max(floor/(1-calibrateTol/3), est))
		pair(est*(1-calibrateTol/3), est*(1+calibrateTol/3))
	}
	pLo, pHi, okLo, okHi := bracket()
	switch {
	case okLo && okHi:
		if pLo.sigma >= pHi.sigma { // ε(σ) not monotone at this scale
			return Calibration{}, false
		}
	case okHi: // walk down from the lowest probe
		pLo = pHi
	default: // walk up from the highest
		pHi = pLo
	}
	lo, epsLo, errLo := pLo.sigma, pLo.eps, pLo.err
	hi, epsHi, errHi := pHi.sigma, pHi.eps, pHi.err
	step := calibrateTol / 2
	for tooLow(epsHi, errHi) { // the root is above hi
		if hi == rdpSigma {
			return Calibration{}, false
		}
		lo, epsLo, errLo = hi, epsHi, errHi
		hi = math.Min(rdpSigma, hi*(1+step))
		step *= 4
		epsHi, errHi = fine(hi)
	}
	for !tooLow(epsLo, errLo) { // the root is below lo
		if lo == floor {
			return Calibration{}, false
		}
		hi, epsHi = lo, epsLo
		lo = math.Max(floor, lo*(1-step))
		step *= 4
		epsLo, errLo = fine(lo)
	}
	if errLo != nil {
		epsLo = math.Inf(1)
	}
	sigma, eps, _ := smallestSigma(fine, target, lo, hi, epsLo, epsHi)
	return Calibration{NoiseMultiplier: sigma, Epsilon: eps}, true
}
