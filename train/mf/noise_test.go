package mf

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/veil-privacy/veil/privacy/dp"
)

// countingSource returns a source factory whose every call is a fresh,
// deterministic stream (as every call of the secure source is fresh).
func countingSource(seed uint64) func() rand.Source {
	var n atomic.Uint64
	return func() rand.Source { return dp.NewTestSource(seed ^ n.Add(1)<<20) }
}

// TestPerStepNoise observes, through Fit's step hook, the released noisy
// sum and the exact clipped sum at every step. Their difference is the
// step's noise: each coordinate must be N(0, (σC)²) at every step (no
// noise carried over from earlier steps), and successive steps' noise must
// be uncorrelated.
func TestPerStepNoise(t *testing.T) {
	d := planted(400, 120, 4, 12, 5)
	cfg := testConfig()
	cfg.Epsilon, cfg.Epochs, cfg.Clip = 4, 4, 0.5
	cfg.source = countingSource(11)
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	sd := plan.NoiseMultiplier * cfg.Clip
	var noises [][]float64
	cfg.stepHook = func(step int, exact, released []float64) {
		z := make([]float64, len(exact))
		for i := range z {
			z[i] = released[i] - exact[i]
		}
		noises = append(noises, z)
	}
	if _, _, err := Fit(context.Background(), d, cfg, plan, FitOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(noises) != plan.Steps || plan.Steps < 5 {
		t.Fatalf("hook saw %d steps of %d (want at least 5)", len(noises), plan.Steps)
	}
	for step, z := range noises {
		// Σ z²/(σC)² is χ² with n degrees of freedom (the mean is known to
		// be 0): mean n, standard deviation √(2n). Six standard deviations
		// keep a false alarm below 1e-8 per step; accumulated noise at step
		// t has variance t(σC)², which is ≥ 40 standard deviations off from
		// the second step on (n ≈ 2,300).
		n := float64(len(z))
		chi := 0.0
		for _, v := range z {
			chi += v * v / (sd * sd)
		}
		if dev := math.Abs(chi-n) / math.Sqrt(2*n); dev > 6 {
			t.Errorf("step %d: noise variance %.4g, want (σC)² = %.4g (%.1f standard deviations off)", step+1, chi/n*sd*sd, sd*sd, dev)
		}
		if step == 0 {
			continue
		}
		// The sample correlation of independent noise vectors is about
		// N(0, 1/n); six standard deviations again.
		prev := noises[step-1]
		var xy, xx, yy float64
		for i, v := range z {
			xy += v * prev[i]
			xx += v * v
			yy += prev[i] * prev[i]
		}
		if r := xy / math.Sqrt(xx*yy); math.Abs(r)*math.Sqrt(n) > 6 {
			t.Errorf("steps %d and %d: noise correlation %.3f, want ≈ 0 (|r|√n ≤ 6)", step, step+1, r)
		}
	}
}

// TestSplitNeighbours removes one subject: every other subject's random
// holdout stays exactly as it was (each subject's shuffle is keyed by its
// own token, not drawn from a stream shared in sorted order).
func TestSplitNeighbours(t *testing.T) {
	d := planted(60, 40, 3, 15, 9)
	_, test := d.Split(0, 0.3, true, 1)
	for _, drop := range []int{0, 7, 59} {
		nb := &Data{Items: d.Items}
		for s := range d.Subjects {
			if s != drop {
				nb.Subjects = append(nb.Subjects, d.Subjects[s])
				nb.Rows = append(nb.Rows, d.Rows[s])
			}
		}
		_, test2 := nb.Split(0, 0.3, true, 1)
		for s2, id := range nb.Subjects {
			s := s2
			if s2 >= drop {
				s++
			}
			if id != d.Subjects[s] || !slices.Equal(test[s], test2[s2]) {
				t.Fatalf("without subject %d, subject %s holds out %v, with it %v", drop, id, test2[s2], test[s])
			}
		}
	}
}
