package mf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// planted makes subjects in groups, each preferring its own block of items.
func planted(subjects, items, groups, per int, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 1))
	b := NewBuilder()
	block := items / groups
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := range subjects {
		g := s % groups
		for k := range per {
			var it int
			if r.Float64() < 0.8 {
				it = g*block + int(math.Floor(float64(block)*r.Float64()*r.Float64())) // skewed within the block
			} else {
				it = r.IntN(items)
			}
			b.Add(fmt.Sprintf("s%d", s), fmt.Sprintf("i%d", it), 1, t0.Add(time.Duration(k)*time.Hour))
		}
	}
	d, _ := b.Data()
	return d
}

func testConfig() Config {
	c := DefaultConfig()
	c.Dim, c.Workers, c.Accountant = 16, 2, "rdp"
	c.source = countingSource(7)
	return c
}

func fitEval(t *testing.T, tr *Data, test [][]int32, cfg Config) (Metrics, *Stats) {
	t.Helper()
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	m, st, err := Fit(context.Background(), tr, cfg, plan, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(tr, test, ModelRanker(m, tr.Items), 2)
	if err != nil {
		t.Fatal(err)
	}
	return met, st
}

// TestPlantedQuality checks the quality goal on planted taste
// groups: at ε = 8 at least 80% of non-private Recall@20, and above
// popularity at ε = 1.
func TestPlantedQuality(t *testing.T) {
	n := 20000
	d := planted(n, 1000, 20, 20, 1)
	tr, test := d.Split(2, 0, false, 1)
	pop, err := Evaluate(tr, test, PopularityRanker(tr), 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Epsilon = math.Inf(1)
	np, _ := fitEval(t, tr, test, cfg)
	cfg.Epsilon = 8
	dp8, st := fitEval(t, tr, test, cfg)
	cfg.Epsilon, cfg.Epochs = 1, 1
	dp1, _ := fitEval(t, tr, test, cfg)
	t.Logf("Recall@20: popularity %.3f, non-private %.3f, ε=8 %.3f (σ %.3f), ε=1 %.3f", pop.Recall20, np.Recall20, dp8.Recall20, st.Plan.NoiseMultiplier, dp1.Recall20)
	if np.Recall20 < 2*pop.Recall20 {
		t.Errorf("non-private Recall@20 %.3f is not well above popularity %.3f", np.Recall20, pop.Recall20)
	}
	if dp8.Recall20 < 0.8*np.Recall20 {
		t.Errorf("ε=8 Recall@20 %.3f is below 80%% of non-private %.3f", dp8.Recall20, np.Recall20)
	}
	if dp1.Recall20 <= pop.Recall20 {
		t.Errorf("ε=1 Recall@20 %.3f is not above popularity %.3f", dp1.Recall20, pop.Recall20)
	}
}

// TestClippedContribution checks the sensitivity the accountant assumes:
// every subject's whole released vector (sparse item gradient and
// statistics) has L2 norm at most C after clipping.
func TestClippedContribution(t *testing.T) {
	d := planted(300, 80, 4, 30, 2)
	cfg := testConfig()
	cfg.Epsilon, cfg.Clip = 8, 0.37
	m := &Model{Dim: cfg.Dim, Items: d.Items, P: make([]float64, len(d.Items)*(cfg.Dim+1)), Lambda: cfg.Lambda, Unobserved: cfg.Unobserved}
	r := rand.New(rand.NewPCG(3, 3))
	for i := range m.P {
		m.P[i] = r.NormFloat64()
	}
	s := NewSolver(m)
	g := newGradScratch(cfg.Dim, len(d.Items))
	acc := make([]float64, len(m.P)+cfg.Dim*cfg.Dim+cfg.Dim+1)
	clippedAny := false
	for subj, rows := range d.Rows {
		clear(acc)
		c, err := g.subject(s, rows, cfg, true, acc)
		if err != nil {
			t.Fatal(err)
		}
		clippedAny = clippedAny || c
		n := 0.0
		for _, v := range acc {
			n += v * v
		}
		if n = math.Sqrt(n); n > cfg.Clip*(1+1e-9) {
			t.Fatalf("subject %d: released vector norm %v above clip %v", subj, n, cfg.Clip)
		}
		if !c && n > 0 && math.Abs(n-g.lastNorm)/n > 1e-9 {
			t.Fatalf("subject %d: norm %v, computed %v", subj, n, g.lastNorm)
		}
	}
	if !clippedAny {
		t.Fatal("no subject was clipped: the test does not exercise clipping")
	}
}

func TestBadInput(t *testing.T) {
	b := NewBuilder()
	if err := b.Add("s", "i", math.NaN(), time.Time{}); !errors.Is(err, ErrInput) {
		t.Errorf("NaN weight: %v", err)
	}
	if _, err := b.Data(); !errors.Is(err, ErrInput) {
		t.Errorf("no interactions: %v", err)
	}
	if _, err := ReadCSV(strings.NewReader("subject_id,item_id,weight\ns1,i1,x\n"), "in.csv", nil); err == nil || !strings.Contains(err.Error(), "in.csv line 2") {
		t.Errorf("bad weight: %v", err)
	}
	cfg := testConfig()
	cfg.Epsilon, cfg.Delta = 1e-4, 1e-6
	if _, err := cfg.MakePlan(); !errors.Is(err, ErrConfig) {
		t.Errorf("ε far too small: %v", err)
	}
	cfg = testConfig()
	cfg.SamplingRate = 0
	if _, err := cfg.MakePlan(); !errors.Is(err, ErrConfig) {
		t.Errorf("q = 0: %v", err)
	}
	cfg = testConfig()
	cfg.Epsilon, cfg.LearningRate = math.Inf(1), 1e12
	d := planted(200, 50, 2, 10, 1)
	plan, _ := cfg.MakePlan()
	if _, _, err := Fit(context.Background(), d, cfg, plan, FitOptions{}); !errors.Is(err, ErrDiverged) {
		t.Errorf("learning rate 1e12: %v", err)
	}
}

func TestCheckpointResume(t *testing.T) {
	d := planted(2000, 200, 4, 10, 1)
	cfg := testConfig()
	cfg.Epsilon, cfg.SamplingRate, cfg.Epochs = 8, 0.2, 2
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	var saved []byte
	stop := errors.New("crash")
	_, _, err = Fit(context.Background(), d, cfg, plan, FitOptions{RunID: "r1", CheckpointEvery: 3, Checkpoint: func(c *Checkpoint) error {
		saved = c.Marshal()
		if c.StepsDone >= 6 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) {
		t.Fatalf("want the crash, got %v", err)
	}
	c, err := UnmarshalCheckpoint(saved)
	if err != nil {
		t.Fatal(err)
	}
	if c.StepsDone != 6 || c.RunID != "r1" {
		t.Fatalf("checkpoint at step %d of run %q", c.StepsDone, c.RunID)
	}
	m, st, err := Fit(context.Background(), d, cfg, plan, FitOptions{Resume: c})
	if err != nil {
		t.Fatal(err)
	}
	if st.StepsDone != plan.Steps || st.SubjectsSeen <= c.Seen || len(m.P) != len(c.P) {
		t.Fatalf("resumed run: %d of %d steps, %d gradients (checkpoint had %d)", st.StepsDone, plan.Steps, st.SubjectsSeen, c.Seen)
	}
	// Another plan, other settings or another item list: refused.
	other := cfg
	other.Epsilon = 4
	p2, _ := other.MakePlan()
	if _, _, err := Fit(context.Background(), d, other, p2, FitOptions{Resume: c}); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("other plan: %v", err)
	}
	other = cfg
	other.Lambda = 2
	if _, _, err := Fit(context.Background(), d, other, plan, FitOptions{Resume: c}); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("other settings: %v", err)
	}
	// Damage is detected.
	saved[len(saved)/2] ^= 1
	if _, err := UnmarshalCheckpoint(saved); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("flipped bit: %v", err)
	}
}

func FuzzUnmarshalCheckpoint(f *testing.F) {
	c := &Checkpoint{Plan: Plan{Steps: 3}, Dim: 1, NItems: 1, StepsDone: 1, P: []float64{1, 2}, M1: []float64{3, 4}, M2: []float64{5, 6},
		Prior: []float64{7, 8}, Released: []float64{9, 10}}
	f.Add(c.Marshal())
	f.Add([]byte(checkpointMagic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := UnmarshalCheckpoint(data)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error %v does not wrap ErrCheckpoint", err)
			}
			return
		}
		if len(c.P) != c.NItems*(c.Dim+1) || len(c.M1) != len(c.P) || len(c.M2) != len(c.P) ||
			len(c.Prior) != len(c.P) || len(c.Released) != len(c.P) {
			t.Fatalf("inconsistent checkpoint accepted: %+v", c)
		}
	})
}

// TestBuilderFoldsRepeatsInOrder checks that repeated (subject, item) pairs
// sum their weights in the order they were added, capped at MaxWeight at
// every step, and keep the latest time: float32 sums depend on the order,
// so this is what keeps prepared tables and models identical bit for bit.
func TestBuilderFoldsRepeatsInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	type key struct{ s, it string }
	type acc struct {
		w float32
		t int64
	}
	want := map[key]*acc{}
	b := NewBuilder()
	weights := []float64{0.1, 0.2, 0.3, 0.7, 1, 3.3, MaxWeight / 3, MaxWeight}
	for i := range 60000 {
		// 20 subjects with many repeats, 3,000 with few (Data works on
		// subjects in parallel from 1,024 of them on).
		s := rng.IntN(20)
		if i%2 == 1 {
			s = 20 + rng.IntN(3000)
		}
		k := key{fmt.Sprintf("s%d", s), fmt.Sprintf("i%d", rng.IntN(15))}
		w := weights[rng.IntN(len(weights))]
		at := time.Unix(int64(1+rng.IntN(1e6)), 0)
		if err := b.Add(k.s, k.it, w, at); err != nil {
			t.Fatal(err)
		}
		a, ok := want[k]
		if !ok {
			want[k] = &acc{float32(w), at.Unix()}
			continue
		}
		a.w = min(a.w+float32(w), MaxWeight)
		a.t = max(a.t, at.Unix())
	}
	d, err := b.Data()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for s, rows := range d.Rows {
		for i, r := range rows {
			n++
			a := want[key{d.Subjects[s], d.Items[r.Item]}]
			if a == nil || math.Float32bits(a.w) != math.Float32bits(r.Weight) || a.t != r.Time {
				t.Fatalf("%s, %s: got weight %v time %d, want %+v", d.Subjects[s], d.Items[r.Item], r.Weight, r.Time, a)
			}
			if i > 0 && (rows[i-1].Time > r.Time || rows[i-1].Time == r.Time && rows[i-1].Item >= r.Item) {
				t.Fatalf("%s: interactions not by time, then item", d.Subjects[s])
			}
		}
	}
	if n != len(want) {
		t.Fatalf("%d interactions, want %d", n, len(want))
	}
}

// TestBadWeightErrorNamesNoSubject: an error reading interactions reaches
// stderr, lineage and the audit log also in a DP run (after the spend): it
// names the item and the weight, never the subject.
func TestBadWeightErrorNamesNoSubject(t *testing.T) {
	err := NewBuilder().Add("tok_secret_subject", "SKU1", -1, time.Time{})
	if err == nil || strings.Contains(err.Error(), "tok_secret_subject") || !strings.Contains(err.Error(), "SKU1") {
		t.Errorf("error %v", err)
	}
}

// TestSplitLeavesDataAlone: the training rows of a split by time share the
// data's rows without a copy, yet appending to them never writes over the
// data's held-out rows, and a random split shuffles a copy.
func TestSplitLeavesDataAlone(t *testing.T) {
	d := &Data{Subjects: []string{"a", "b"}, Items: []string{"x", "y", "z"}, Rows: [][]Interaction{
		{{Item: 0, Weight: 1, Time: 1}, {Item: 1, Weight: 1, Time: 2}, {Item: 2, Weight: 1, Time: 3}},
		{{Item: 2, Weight: 1, Time: 5}},
	}}
	want := [][]Interaction{slices.Clone(d.Rows[0]), slices.Clone(d.Rows[1])}
	tr, test := d.Split(1, 0, false, 1)
	if len(tr.Rows[0]) != 2 || !slices.Equal(test[0], []int32{2}) || len(tr.Rows[1]) != 1 || test[1] != nil {
		t.Fatalf("split: %v, test %v", tr.Rows, test)
	}
	tr.Rows[0] = append(tr.Rows[0], Interaction{Item: 0, Weight: 9})
	for _, frac := range []float64{0.5, 0.9} {
		d.Split(0, frac, true, 7)
	}
	for s := range want {
		if !slices.Equal(d.Rows[s], want[s]) {
			t.Fatalf("subject %d's rows changed: %v, want %v", s, d.Rows[s], want[s])
		}
	}
}

// TestCheckpointCadence: at the default cadence a short run saves once,
// after its last step (not every tenth of the plan); an explicit
// CheckpointEvery keeps its steps.
func TestCheckpointCadence(t *testing.T) {
	d := planted(400, 60, 4, 8, 3)
	cfg := testConfig()
	cfg.Epsilon, cfg.Epochs, cfg.SamplingRate = math.Inf(1), 10, 0.5
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		every int
		want  []int
	}{{0, []int{20}}, {5, []int{5, 10, 15, 20}}} {
		var got []int
		save := func(ck *Checkpoint) error { got = append(got, ck.StepsDone); return nil }
		if _, _, err := Fit(context.Background(), d, cfg, plan, FitOptions{Checkpoint: save, CheckpointEvery: c.every}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("checkpoint_every %d: saved after steps %v, want %v", c.every, got, c.want)
		}
	}
}

// TestConfigRefusesEndlessPlans: a sampling rate so small that the plan's
// steps (epochs / q) would never end is a configuration error.
func TestConfigRefusesEndlessPlans(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epsilon, cfg.SamplingRate = math.Inf(1), 1e-9
	if err := cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "steps") {
		t.Errorf("sampling_rate 1e-9: %v, want a configuration error about the steps", err)
	}
	cfg.SamplingRate, cfg.Epochs = 0.01, 1000 // 100,000 steps: the bound itself
	if err := cfg.Validate(); err != nil {
		t.Errorf("100,000 steps: %v", err)
	}
}
