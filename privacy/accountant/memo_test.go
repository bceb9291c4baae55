package accountant

import (
	"math"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// The memo returns bit for bit what composing again gives, and events that
// differ in any parameter the PLD reads never share an entry.
func TestMemoIsExact(t *testing.T) {
	base := Event{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: 1.05, Count: 5}
	variants := [][]Event{
		{base},
		{{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: 1.05, Count: 6}},
		{{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: math.Nextafter(1.05, 2), Count: 5}},
		{{Mechanism: SubsampledGaussian, SamplingRate: 0.41, NoiseMultiplier: 1.05, Count: 5}},
		{{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 1.2, Count: 1}, base},
		{base, {Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 1.2, Count: 1}},
		{base, {Mechanism: DiscreteGaussian, Sigma: 8, Sensitivity: 1, Count: 1}},
		{base, {Mechanism: DiscreteGaussian, Sigma: 8, Sensitivity: 2, Count: 1}},
		{base, {Mechanism: DiscreteLaplace, Scale: 8, Sensitivity: 2, Count: 1}},
	}
	fresh := make([]float64, len(variants))
	for i, evs := range variants {
		memo.reset()
		r, err := Spent("pld", 1e-6, evs...)
		if err != nil {
			t.Fatal(err)
		}
		fresh[i] = r.Epsilon
	}
	memo.reset()
	for range 2 { // the second round reads everything from the memo
		for i, evs := range variants {
			for _, delta := range []float64{1e-6, 1e-5} {
				r, err := Spent("pld", delta, evs...)
				if err != nil {
					t.Fatal(err)
				}
				if delta == 1e-6 && r.Epsilon != fresh[i] {
					t.Errorf("variant %d: ε %.17g through the memo, %.17g composed afresh", i, r.Epsilon, fresh[i])
				}
			}
		}
	}
	for i := range fresh {
		for j := range i {
			if fresh[i] == fresh[j] && !(i == 5 && j == 4) { // 4, 5: the same events, either order
				t.Errorf("variants %d and %d spend the same ε %v: the test cannot tell them apart", i, j, fresh[i])
			}
		}
	}
}

// The memo keeps at most memoBins bins, dropping the least recently used.
func TestMemoBound(t *testing.T) {
	m := &pmfMemo{}
	big := pmf{probs: make([]float64, memoBins/3+1)}
	m.put("a", big)
	m.put("b", big)
	if _, ok := m.get("a"); !ok { // a is now the most recently used
		t.Fatal("a dropped early")
	}
	m.put("c", big)
	if _, ok := m.get("b"); ok {
		t.Error("b kept past the bound")
	}
	if _, ok := m.get("a"); !ok {
		t.Error("a, used more recently than b, dropped")
	}
	if m.bins > memoBins {
		t.Errorf("%d bins held, bound %d", m.bins, memoBins)
	}
	m.put("huge", pmf{probs: make([]float64, memoBins+1)})
	if _, ok := m.get("huge"); ok {
		t.Error("an entry beyond the bound alone was kept")
	}
}

// The FFT budget lets transforms that fit run side by side and one longer
// than the budget run alone.
func TestFFTBudget(t *testing.T) {
	b := &fftBudget{sem: semaphore.NewWeighted(fftBudgetLen)}
	w1 := b.acquire(fftBudgetLen / 2)
	w2 := b.acquire(fftBudgetLen / 2) // fits beside the first
	done := make(chan int64)
	go func() { done <- b.acquire(4 * fftBudgetLen) }()
	select {
	case <-done:
		t.Fatal("a transform longer than the budget ran beside others")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(w1)
	b.release(w2)
	if w := <-done; w != fftBudgetLen {
		t.Errorf("weight %d, want the whole budget %d", w, fftBudgetLen)
	} else {
		b.release(w)
	}
}
