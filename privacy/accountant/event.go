package accountant

import (
	"errors"
	"fmt"
	"math"
)

// ErrParam is returned (wrapped) for event parameters out of range; the CLI
// maps it to a usage error.
var ErrParam = errors.New("invalid privacy parameter")

// ErrUnreachable is returned when a calibration target cannot be met within
// the allowed noise range.
var ErrUnreachable = errors.New("privacy target cannot be reached")

// Mechanism names a kind of DP release.
type Mechanism string

const (
	// SubsampledGaussian is the Gaussian mechanism with sensitivity 1 on a
	// Poisson sample of subjects drawn with probability SamplingRate
	// (DP-SGD steps, DP k-means iterations). SamplingRate 1 is the plain
	// Gaussian mechanism.
	SubsampledGaussian Mechanism = "subsampled_gaussian"
	// DiscreteGaussian is the discrete Gaussian with scale Sigma added to
	// integer values of L2 sensitivity Sensitivity (noisy counts).
	DiscreteGaussian Mechanism = "discrete_gaussian"
	// DiscreteLaplace is the discrete Laplace with scale Scale added to
	// integer values of L1 sensitivity Sensitivity.
	DiscreteLaplace Mechanism = "discrete_laplace"
	// PureDelta is a release whose only cost is a probability Delta of a
	// bad event outside the other events' privacy loss (the thresholding of
	// DP partition selection: an item only one subject holds is released
	// with probability at most Delta). Accountants subtract Count·Delta
	// from the target δ before they convert the other events to ε (+Inf
	// when nothing is left).
	PureDelta Mechanism = "pure_delta"
)

// Event is one release, repeated Count times. It is stored as JSON in the
// budget ledger and in training checkpoints.
type Event struct {
	Mechanism       Mechanism `json:"mechanism"`
	SamplingRate    float64   `json:"sampling_rate,omitempty"`    // SubsampledGaussian: q in (0, 1]
	NoiseMultiplier float64   `json:"noise_multiplier,omitempty"` // SubsampledGaussian: σ / sensitivity
	Sigma           float64   `json:"sigma,omitempty"`            // DiscreteGaussian: scale
	Scale           float64   `json:"scale,omitempty"`            // DiscreteLaplace: scale
	Sensitivity     int       `json:"sensitivity,omitempty"`      // discrete mechanisms: integer sensitivity
	Delta           float64   `json:"delta,omitempty"`            // PureDelta: the probability of the bad event
	Count           int       `json:"count"`                      // repetitions, at least 1
	Note            string    `json:"note,omitempty"`             // what was released, for stewards
}

// Validate reports whether e is a well-formed event.
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrParam, e.Mechanism, fmt.Sprintf(format, args...))
	}
	if e.Count < 1 {
		return bad("count %d must be at least 1", e.Count)
	}
	finitePos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	switch e.Mechanism {
	case SubsampledGaussian:
		if !(e.SamplingRate > 0 && e.SamplingRate <= 1) {
			return bad("sampling rate %v must be in (0, 1]", e.SamplingRate)
		}
		if !finitePos(e.NoiseMultiplier) {
			return bad("noise multiplier %v must be positive and finite", e.NoiseMultiplier)
		}
	case DiscreteGaussian, DiscreteLaplace:
		s := e.Sigma
		if e.Mechanism == DiscreteLaplace {
			s = e.Scale
		}
		if !finitePos(s) {
			return bad("scale %v must be positive and finite", s)
		}
		if e.Sensitivity < 1 {
			return bad("sensitivity %d must be a positive integer", e.Sensitivity)
		}
	case PureDelta:
		if !(e.Delta > 0 && e.Delta < 1) {
			return bad("delta %v must be in (0, 1)", e.Delta)
		}
	default:
		return fmt.Errorf("%w: unknown mechanism %q", ErrParam, e.Mechanism)
	}
	return nil
}

// CheckDelta reports whether delta is in (0, 1).
func CheckDelta(delta float64) error {
	if !(delta > 0 && delta < 1) {
		return fmt.Errorf("%w: delta %v must be in (0, 1)", ErrParam, delta)
	}
	return nil
}

// remainingDelta is the δ left for the privacy-loss events when the pure-δ
// events have taken pure out of delta; ok is false when nothing is left:
// no finite ε holds at delta (accountants report +Inf, so that a budget
// check refuses the spend as exhausted).
func remainingDelta(delta, pure float64) (rest float64, ok bool, err error) {
	if err := CheckDelta(delta); err != nil {
		return 0, false, err
	}
	if rest = delta - pure; rest > 0 {
		return rest, true, nil
	}
	return 0, false, nil
}

// Result is an (ε, δ) guarantee.
type Result struct {
	Accountant string  `json:"accountant"`
	Epsilon    float64 `json:"epsilon"`
	Delta      float64 `json:"delta"`
	Order      float64 `json:"order,omitempty"` // RDP: the optimal order
}

// Accountant is what both RDP and PLD provide.
type Accountant interface {
	Name() string
	Compose(e Event) error
	Epsilon(delta float64) (Result, error)
}

// New returns an empty accountant by name: "rdp" or "pld".
func New(name string) (Accountant, error) {
	switch name {
	case "rdp":
		return NewRDP(), nil
	case "pld":
		return NewPLD(), nil
	}
	return nil, fmt.Errorf("%w: unknown accountant %q (want rdp or pld)", ErrParam, name)
}

// Spent returns the ε that events spend at delta under the named accountant.
func Spent(name string, delta float64, events ...Event) (Result, error) {
	a, err := New(name)
	if err != nil {
		return Result{}, err
	}
	for _, e := range events {
		if err := a.Compose(e); err != nil {
			return Result{}, err
		}
	}
	return a.Epsilon(delta)
}
