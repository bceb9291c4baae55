package accountant

import (
	"fmt"
	"math"
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
	if name == "pld" {
		// RDP is looser than PLD, so RDP's answer is enough for PLD: start
		// the bracket there (PLD evaluations are the costly ones).
		c, err := CalibrateWith("rdp", targetEps, q, steps, delta, fixed...)
		if err == nil {
			hi = c.NoiseMultiplier
			lo = math.Max(MinNoiseMultiplier, hi/4)
		}
	}
	epsHi, err := spent(hi)
	if err != nil {
		return Calibration{}, err
	}
	if epsHi > targetEps {
		return Calibration{}, fmt.Errorf("%w: ε %.4g at δ %g needs a noise multiplier above %g (at %g it is %.4g); lower the steps or the sampling rate, or raise ε",
			ErrUnreachable, targetEps, delta, hi, hi, epsHi)
	}
	epsLo, err := spent(lo)
	if err != nil {
		// The cheapest noise may need too many bins (PLD); treat as too low.
		epsLo = math.Inf(1)
	}
	if epsLo <= targetEps {
		return Calibration{NoiseMultiplier: lo, Epsilon: epsLo}, nil
	}
	for (hi-lo)/hi > 1e-4 {
		mid := (lo + hi) / 2
		e, err := spent(mid)
		if err != nil || e > targetEps {
			lo = mid
		} else {
			hi, epsHi = mid, e
		}
	}
	return Calibration{NoiseMultiplier: hi, Epsilon: epsHi}, nil
}
