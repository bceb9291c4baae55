package mf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// shrinkModel is a model of n items with dimension d whose prior biases
// fall with the item index (item 0 is the most popular), so the bands are
// items [0, 32), [32, 64), [64, 128), ...
func shrinkModel(n, d int) (*Model, []float64) {
	m := &Model{Dim: d, Items: make([]string, n), P: make([]float64, n*(d+1))}
	for j := range n {
		m.Items[j] = fmt.Sprintf("i%d", j)
		m.P[j*(d+1)+d] = 1 / float64(j+2)
	}
	return m, slices.Clone(m.P)
}

// TestShrinkPureNoise: a linear optimizer's deviation from the prior is
// -η times the released sums; on pure noise every band keeps a share near
// 0, so the model stays at the prior. Positive-part James–Stein on n
// coordinates keeps E[share²] of order 1/n; with at least 32 coordinates
// per group the kept squared deviation is a few percent of the unshrunk
// one at most (0.05, over 20 draws, about 10 standard deviations above
// what the estimator keeps in expectation).
func TestShrinkPureNoise(t *testing.T) {
	const n, d, v, eta = 2000, 8, 0.3, 2.0
	r := rand.New(rand.NewPCG(3, 4))
	var kept, moved float64
	for range 20 {
		m, prior := shrinkModel(n, d)
		released := make([]float64, len(m.P))
		for i := range released {
			released[i] = r.NormFloat64() * math.Sqrt(v)
			m.P[i] -= eta * released[i]
		}
		for i := range m.P {
			moved += (m.P[i] - prior[i]) * (m.P[i] - prior[i])
		}
		bands := shrinkToPrior(m, prior, released, v)
		if len(bands) != 7 || bands[0].Last != 32 || bands[1].Last != 64 || bands[6].Last != n {
			t.Fatalf("bands %+v: want 32, 64, 128, ..., %d", bands, n)
		}
		for i := range m.P {
			kept += (m.P[i] - prior[i]) * (m.P[i] - prior[i])
		}
	}
	if kept > 0.05*moved {
		t.Errorf("on pure noise the model kept %.3g of its squared deviation from the prior, want ≤ 0.05", kept/moved)
	}
	t.Logf("pure noise: %.4f of the squared deviation kept", kept/moved)
}

// TestShrinkSignal: bands whose released sums carry a signal keep about
// the signal's share of their energy, and bands without signal about none.
// The estimate rests on the energy of n coordinates, whose relative
// standard deviation is at most √(2/n) here: the test allows three of them
// (0.27 for the first band's 256 factor coordinates, 0.03 for the last
// band's 15,616).
func TestShrinkSignal(t *testing.T) {
	const n, d, v = 2000, 8, 1.0
	r := rand.New(rand.NewPCG(5, 6))
	m, prior := shrinkModel(n, d)
	released := make([]float64, len(m.P))
	w := d + 1
	for j := range n {
		for p := range w {
			s := 0.0
			if j < 64 { // the two most popular bands: signal energy 3v per coordinate
				s = math.Sqrt(3 * v)
				if r.IntN(2) == 0 {
					s = -s
				}
			}
			released[j*w+p] = s + r.NormFloat64()*math.Sqrt(v)
			m.P[j*w+p] -= released[j*w+p]
		}
	}
	bands := shrinkToPrior(m, prior, released, v)
	for _, b := range bands {
		want := 0.0
		if b.Last <= 64 {
			want = 0.75 // 3v / (3v + v)
		}
		k := b.Last - b.First
		if math.Abs(b.Factors-want) > 3*math.Sqrt(2/float64(k*d)) || math.Abs(b.Biases-want) > 3*math.Sqrt(2/float64(k)) {
			t.Errorf("band [%d, %d): kept factors %.3f, biases %.3f, want about %.2f", b.First, b.Last, b.Factors, b.Biases, want)
		}
	}
	// An item of a band keeps that share of its deviation, exactly.
	j := 5
	for p := range w {
		want := prior[j*w+p] - bands[0].Factors*released[j*w+p]
		if p == d {
			want = prior[j*w+p] - bands[0].Biases*released[j*w+p]
		}
		if math.Abs(m.P[j*w+p]-want) > 1e-12 {
			t.Fatalf("item %d coordinate %d: %v, want %v", j, p, m.P[j*w+p], want)
		}
	}
}

// TestFitPureNoiseStaysAtPrior trains on released sums that are pure noise
// (the step hook removes the exact clipped sum, as if no subject had any
// signal): Adam moves every coordinate by about its learning rate per step
// regardless, and the shrinkage must bring the released model back to
// the prior it started from.
func TestFitPureNoiseStaysAtPrior(t *testing.T) {
	d := planted(600, 300, 4, 12, 2)
	cfg := testConfig()
	// A catalog: at ε 1 DP partition selection may keep no item of this
	// small shop, and the test is about the step rule, not selection.
	cfg.Epsilon, cfg.Catalog = 1, slices.Clone(d.Items)
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	cfg.stepHook = func(_ int, exact, released []float64) {
		for i := range released {
			released[i] -= exact[i]
		}
	}
	var prior, trained []float64
	m, st, err := Fit(context.Background(), d, cfg, plan, FitOptions{CheckpointEvery: plan.Steps, Checkpoint: func(c *Checkpoint) error {
		prior, trained = slices.Clone(c.Prior), slices.Clone(c.P) // after the last step, before the shrinkage
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Shrink) == 0 || len(prior) != len(m.P) {
		t.Fatalf("no shrinkage (%d bands) or no checkpoint", len(st.Shrink))
	}
	var moved, kept float64
	for i := range m.P {
		moved += (trained[i] - prior[i]) * (trained[i] - prior[i])
		kept += (m.P[i] - prior[i]) * (m.P[i] - prior[i])
	}
	// Adam's first step alone moves every coordinate by its learning rate.
	if perCoord := moved / float64(len(m.P)); perCoord < 0.5*cfg.LearningRate*cfg.LearningRate {
		t.Fatalf("Adam moved %.3g per coordinate (squared), want at least half of lr² = %.3g: the test lost its premise", perCoord, cfg.LearningRate*cfg.LearningRate)
	}
	if kept > 0.05*moved {
		t.Errorf("on pure noise the released model kept %.3g of Adam's squared deviation from the prior, want ≤ 0.05 (bands %+v)", kept/moved, st.Shrink)
	}
	t.Logf("pure noise: Adam moved %.3g (squared, per coordinate), %.4f of it kept", moved/float64(len(m.P)), kept/moved)
}
