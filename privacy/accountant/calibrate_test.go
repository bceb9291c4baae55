package accountant

import (
	"math"
	"sync/atomic"
	"testing"
)

// twoPhase on curves shaped like ε(σ) whose coarse root is off the fine
// one by a relative off: whatever the offset, an answer (ok) spends at most
// the target on the fine curve, 1e-4 less noise would not, and its ε is
// the fine one; a coarse curve as close as PLD's costs two fine
// evaluations, and a power law off by up to half four (the re-centred
// pair lands on the predicted root).
func TestTwoPhase(t *testing.T) {
	const target = 2
	fineRoot := math.Pow(3.0/target, 1/1.3)
	for _, c := range []struct {
		off       float64
		failBelow float64 // the fine curve fails below this σ
		maxFine   int64
		wantOK    bool
	}{
		{0, 0, 2, true}, {1e-6, 0, 2, true}, {-1e-6, 0, 2, true},
		{3e-4, 0, 4, true}, {-3e-4, 0, 4, true}, {5e-3, 0, 4, true}, {-5e-3, 0, 4, true},
		{0.1, 0, 4, true}, {-0.5, 0, 4, true},
		{0.5, 0, 20, false}, // the root is more than 20% below the coarse one: fall back
		{2e-4, fineRoot * (1 - 5e-5), 6, true},
	} {
		var fineEvals atomic.Int64
		fine := func(s float64) (float64, error) {
			fineEvals.Add(1)
			if s < c.failBelow {
				return 0, ErrParam
			}
			return 3 / math.Pow(s, 1.3), nil
		}
		coarse := func(s float64) (float64, error) { return 3 / math.Pow(s/(1+c.off), 1.3), nil }
		got, ok := twoPhase(coarse, fine, target, 10)
		n := fineEvals.Load()
		if ok != c.wantOK {
			t.Errorf("offset %v: ok %v, want %v", c.off, ok, c.wantOK)
		}
		if n > c.maxFine {
			t.Errorf("offset %v: %d fine evaluations, want at most %d", c.off, n, c.maxFine)
		}
		if !ok {
			continue
		}
		check, _ := fine(got.NoiseMultiplier)
		less, err := fine(got.NoiseMultiplier * (1 - 1e-4))
		if check != got.Epsilon || check > target || (err == nil && less <= target) {
			t.Errorf("offset %v: σ %v spends %v (reported %v); 1e-4 less noise spends %v", c.off, got.NoiseMultiplier, check, got.Epsilon, less)
		}
		if math.Abs(got.NoiseMultiplier-fineRoot) > 1e-4*fineRoot {
			t.Errorf("offset %v: σ %v, the root is %v", c.off, got.NoiseMultiplier, fineRoot)
		}
	}
}

// Under PLD, CalibrateWith searches the coarse composition first and
// decides on the fine one: the answer meets the target at full precision,
// 1e-4 less noise does not, its ε is what Spent reports for it, bit for
// bit, and it is within the tolerance of what the search on fine
// evaluations alone finds.
func TestCalibratePLDTwoPhase(t *testing.T) {
	hist := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 1.1935583714714983, Count: 1}
	for _, c := range []struct {
		name          string
		eps, q, delta float64
		steps         int
		fixed         []Event
	}{
		{"configs/train.yaml", 8, 0.4, 1e-6, 5, []Event{hist}},
		{"curve ε 1", 1, 0.4, 1e-6, 5, []Event{{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 9.01, Count: 1}}},
		{"no catalog", 8, 0.4, 1e-6, 5, []Event{hist, {Mechanism: PureDelta, Delta: 5e-7, Count: 1}}},
		{"q 0.01, 1000 steps", 2, 0.01, 1e-5, 1000, nil},
		{"with a noisy count", 3, 0.1, 1e-6, 40, []Event{{Mechanism: DiscreteGaussian, Sigma: 8, Sensitivity: 1, Count: 1}}},
	} {
		got, err := CalibrateWith("pld", c.eps, c.q, c.steps, c.delta, c.fixed...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spend := func(s float64) float64 {
			r, err := Spent("pld", c.delta, append(c.fixed[:len(c.fixed):len(c.fixed)], Event{Mechanism: SubsampledGaussian, SamplingRate: c.q, NoiseMultiplier: s, Count: c.steps})...)
			if err != nil {
				t.Fatal(err)
			}
			return r.Epsilon
		}
		memo.reset()
		if e := spend(got.NoiseMultiplier); e != got.Epsilon || e > c.eps {
			t.Errorf("%s: σ %v spends %.17g, calibration reported %.17g, target %v", c.name, got.NoiseMultiplier, e, got.Epsilon, c.eps)
		}
		if e := spend(got.NoiseMultiplier * (1 - 1e-4)); e <= c.eps {
			t.Errorf("%s: σ %v is not the smallest: 1e-4 less spends %v", c.name, got.NoiseMultiplier, e)
		}
		rdp, err := CalibrateWith("rdp", c.eps, c.q, c.steps, c.delta, c.fixed...)
		if err != nil {
			t.Fatal(err)
		}
		spent := func(s float64) (float64, error) { return spend(s), nil }
		before, err := calibrate(spent, c.eps, c.delta, rdp.NoiseMultiplier*0.8, rdp.NoiseMultiplier, 0.8)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.NoiseMultiplier-before.NoiseMultiplier) > 1e-4*before.NoiseMultiplier {
			t.Errorf("%s: σ %v, the fine search alone %v", c.name, got.NoiseMultiplier, before.NoiseMultiplier)
		}
		t.Logf("%s: σ %.10g ε %.10g; fine search alone σ %.10g ε %.10g", c.name, got.NoiseMultiplier, got.Epsilon, before.NoiseMultiplier, before.Epsilon)
	}
}

// configs/train.yaml's schedule costs two fine evaluations, at once.
func TestTwoPhaseTrainYAMLFineEvaluations(t *testing.T) {
	hist := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 1.1935583714714983, Count: 1}
	rdp, err := CalibrateWith("rdp", 8, 0.4, 5, 1e-6, hist)
	if err != nil {
		t.Fatal(err)
	}
	var coarseEvals, fineEvals atomic.Int64
	count := func(n *atomic.Int64, f func(float64) (float64, error)) func(float64) (float64, error) {
		return func(s float64) (float64, error) { n.Add(1); return f(s) }
	}
	coarse := count(&coarseEvals, pldSpent(coarseFactor*DefaultInterval, 0.4, 5, 1e-6, []Event{hist}))
	fine := count(&fineEvals, pldSpent(DefaultInterval, 0.4, 5, 1e-6, []Event{hist}))
	if _, ok := twoPhase(coarse, fine, 8, rdp.NoiseMultiplier); !ok {
		t.Fatal("twoPhase gave up")
	}
	if n := fineEvals.Load(); n != 2 {
		t.Errorf("%d fine evaluations, want 2", n)
	}
	t.Logf("%d coarse and %d fine evaluations", coarseEvals.Load(), fineEvals.Load())
}
