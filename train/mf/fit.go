package mf

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/veil-privacy/veil/privacy/dp"
)

// Stats describe a training run.
type Stats struct {
	Plan     Plan    `json:"plan"`
	Private  bool    `json:"private"`
	Clip     float64 `json:"clip_norm,omitempty"`
	Subjects int     `json:"subjects"`
	Items    int     `json:"items"` // of the model
	// DroppedOutsideItems counts interactions (after bounding) with items
	// outside the model's universe (catalog or partition selection).
	DroppedOutsideItems int `json:"interactions_outside_items"`
	// Normalizer divides the summed update: q times the histogram's
	// (noisy, in a private run) subject count.
	Normalizer     float64 `json:"update_normalizer"`
	Interactions   int     `json:"interactions_used"` // after bounding
	Bounded        int     `json:"subjects_sampled_down"`
	StepsDone      int     `json:"steps_done"`
	SubjectsSeen   int64   `json:"subject_gradients"`  // sampled subject gradients over all steps
	ClippedShare   float64 `json:"clipped_share"`      // of subject gradients, those the clip scaled down
	MeanNorm       float64 `json:"mean_gradient_norm"` // before clipping (diagnostic, not a DP release)
	Seconds        float64 `json:"seconds"`
	SubjectsPerSec float64 `json:"subjects_per_second"`
	SecondsPerEp   float64 `json:"seconds_per_epoch"`
	// Shrink is how much of the learned deviation from the prior each
	// popularity band kept (private runs: see shrinkToPrior).
	Shrink []ShrinkBand `json:"shrink_to_prior,omitempty"`
	// Popularity is the popularity prior's bias of each model item: a
	// function of the released item-count histogram (charged in the plan),
	// so the non-personalized list costs no more budget. It is not part of
	// the report's JSON.
	Popularity []float64 `json:"-"`
}

// FitOptions are the operational settings of Fit.
type FitOptions struct {
	Log *slog.Logger
	// Checkpoint, when set, is called with the state every
	// CheckpointEvery steps (default: every tenth of the plan) and after
	// the last step; an error stops training.
	Checkpoint      func(*Checkpoint) error
	CheckpointEvery int
	// Resume continues from a checkpoint of the same plan, settings and
	// items; its steps count toward the plan, never again.
	Resume *Checkpoint
	RunID  string // recorded in checkpoints
}

// Fit trains item factors and biases on d. Under DP (cfg.Private) the plan
// must come from cfg.MakePlan and its spend must have been accepted by the
// budget ledger before Fit is called: Fit reads the data.
func Fit(ctx context.Context, d *Data, cfg Config, plan Plan, opt FitOptions) (*Model, *Stats, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if len(d.Items) == 0 || d.Interactions() == 0 {
		return nil, nil, fmt.Errorf("%w: no interactions", ErrInput)
	}
	if plan.SamplingRate != cfg.SamplingRate {
		return nil, nil, fmt.Errorf("%w: the plan samples at q %v, the config at %v", ErrConfig, plan.SamplingRate, cfg.SamplingRate)
	}
	private := cfg.Private()
	if private && !(plan.NoiseMultiplier > 0) {
		return nil, nil, fmt.Errorf("%w: a private run needs a calibrated noise multiplier", ErrConfig)
	}
	start := time.Now()
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	dim := cfg.Dim
	w := dim + 1
	newSource := cfg.source
	if newSource == nil {
		newSource = func() rand.Source { return dp.NewSecureSource() }
	}
	// Contribution bounding, once per subject, data-independent per subject.
	st := &Stats{Plan: plan, Private: private, Subjects: len(d.Subjects)}
	if private {
		st.Clip = cfg.Clip
	}
	// Each subject's randomness (bounding, negatives) is keyed by its own
	// id, never drawn from a stream shared with other subjects: adding or
	// removing a subject changes nothing in anyone else's gradient.
	keys := make([]uint64, len(d.Subjects))
	bounded := make([][]Interaction, len(d.Rows))
	for s, r := range d.Rows {
		keys[s] = subjectKey(d.Subjects[s])
		bounded[s] = bound(r, cfg.MaxInteractions, rand.New(rand.NewPCG(cfg.Seed^keys[s], 0xb0d)))
		if len(bounded[s]) < len(r) {
			st.Bounded++
		}
	}
	// The item universe and the popularity prior: the DP item-count
	// histogram (charged in the plan) or, on resume, what the checkpoint
	// kept of it: it is released once per run, never drawn again.
	var u *universe
	if c := opt.Resume; c != nil && len(c.ItemIDs) > 0 {
		u = &universe{items: c.ItemIDs, index: itemIndex(d.Items, c.ItemIDs), subjects: c.NoisySubjects}
	} else {
		var err error
		if u, err = itemUniverse(d, bounded, keys, cfg, plan, private, newSource); err != nil {
			return nil, nil, err
		}
	}
	rows, dropped := remapRows(bounded, u.index)
	for _, r := range rows {
		st.Interactions += len(r)
	}
	st.Items, st.DroppedOutsideItems = len(u.items), dropped
	// The update is normalized by q·Ñ with Ñ the histogram's subject count:
	// noisy and charged in a private run, so the update's scale does not
	// depend on the exact number of subjects (exact without privacy).
	st.Normalizer = plan.SamplingRate * u.subjects
	nItems := len(u.items)
	// Initialization from the seed and the released histogram only.
	m := &Model{Dim: dim, Items: u.items, P: make([]float64, nItems*w), Lambda: cfg.Lambda, Unobserved: cfg.Unobserved}
	ir := rand.New(rand.NewPCG(cfg.Seed, 0x1417))
	for j := range nItems {
		r := m.Row(j)
		for p := range dim {
			r[p] = ir.NormFloat64() * 0.1 / math.Sqrt(float64(dim))
		}
		if u.counts != nil {
			r[dim] = priorBias(u.counts[j], u.subjects, cfg.Unobserved)
		}
	}
	// prior is where training starts; released sums the released item rows
	// of the update: the shrinkage toward the prior after the last step
	// weighs what was learned by how much of it the noise explains.
	prior := slices.Clone(m.P)
	released := make([]float64, len(m.P))
	adam := newAdam(len(m.P), cfg.LearningRate)
	adam.sgd = cfg.Optimizer == "sgd"
	var clipped int64
	var normSum, prevSeconds float64
	first := 0
	if c := opt.Resume; c != nil {
		switch {
		case c.Plan != plan:
			return nil, nil, fmt.Errorf("%w: it was made by another privacy plan (%+v, now %+v)", ErrCheckpoint, c.Plan, plan)
		case c.Config != cfg.fingerprint():
			return nil, nil, fmt.Errorf("%w: it was made with other training settings", ErrCheckpoint)
		case c.Items != itemsFingerprint(m.Items) || c.Dim != dim || len(c.P) != len(m.P):
			return nil, nil, fmt.Errorf("%w: it was made for another item list or dimension", ErrCheckpoint)
		}
		if len(c.Prior) != len(m.P) || len(c.Released) != len(m.P) {
			return nil, nil, fmt.Errorf("%w: it holds no prior or released sums", ErrCheckpoint)
		}
		copy(m.P, c.P)
		copy(prior, c.Prior)
		copy(released, c.Released)
		copy(adam.m1, c.M1)
		copy(adam.m2, c.M2)
		adam.t, first = c.AdamT, c.StepsDone
		st.SubjectsSeen, clipped, normSum, prevSeconds = c.Seen, c.Clipped, c.NormSum, c.Seconds
		st.StepsDone = first
		log.Info("resuming training", "step", first, "of", plan.Steps)
	}
	st.Popularity = priorPopularity(prior, dim, nItems)
	every := opt.CheckpointEvery
	if every <= 0 {
		every = max(1, plan.Steps/10)
	}
	save := func(step int) error {
		if opt.Checkpoint == nil {
			return nil
		}
		return opt.Checkpoint(&Checkpoint{RunID: opt.RunID, Plan: plan, Config: cfg.fingerprint(), Items: itemsFingerprint(m.Items), ItemIDs: m.Items, NoisySubjects: u.subjects,
			Dim: dim, NItems: nItems, StepsDone: step, AdamT: adam.t, Seen: st.SubjectsSeen, Clipped: clipped, NormSum: normSum,
			Seconds: prevSeconds + time.Since(start).Seconds(), P: m.P, M1: adam.m1, M2: adam.m2, Prior: prior, Released: released})
	}
	// Each subject's released vector is its sparse gradient on the items it
	// touched, followed by α·[u uᵀ, u, 1]: the statistics from which the
	// gradient of the unobserved items (all of them) follows for every item
	// at once. The whole vector is clipped to C and noised as one Gaussian
	// mechanism.
	nStats := dim*dim + dim + 1
	accs := make([][]float64, workers)
	for i := range accs {
		accs[i] = make([]float64, len(m.P)+nStats)
	}
	grad := make([]float64, len(m.P))
	expected := st.Normalizer
	sampler := rand.New(newSource())
	batch := make([]int, 0, int(expected*1.5)+16)
	rate := plan.SamplingRate
	if cfg.brokenRate > 0 {
		rate = cfg.brokenRate // a deliberately wrong sampler: the white-box audit's tests only
	}
	for step := first; step < plan.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		batch = batch[:0]
		for s := range rows {
			if rate >= 1 || sampler.Float64() < rate {
				batch = append(batch, s)
			}
		}
		solver := NewSolver(m)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for wk := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acc := accs[wk]
				clear(acc)
				g := newGradScratch(dim, nItems)
				var nClip int64
				for k := wk; k < len(batch); k += workers {
					s := batch[k]
					g.pcg.Seed(cfg.Seed^keys[s], uint64(step))
					c, err := g.subject(solver, rows[s], cfg, private, acc)
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					if c {
						nClip++
					}
				}
				mu.Lock()
				normSum += g.normSum
				clipped += nClip
				mu.Unlock()
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return nil, nil, firstErr
		}
		sum := accs[0]
		for _, a := range accs[1:] {
			for i, v := range a {
				sum[i] += v
			}
		}
		var exact []float64
		if cfg.stepHook != nil {
			exact = slices.Clone(sum)
		}
		if private && !cfg.brokenNoNoise {
			// Fresh noise every step, added straight into this step's sum:
			// nothing of an earlier step's noise is carried over.
			if cfg.brokenNoise != nil {
				cfg.brokenNoise(sum, plan.NoiseMultiplier*cfg.Clip, newSource) // the white-box audit's tests only
			} else {
				dp.GaussianParallel(sum, plan.NoiseMultiplier*cfg.Clip, cfg.Clip, newSource)
			}
		}
		if cfg.stepHook != nil {
			cfg.stepHook(step, exact, sum)
		}
		inv := 1 / expected
		if private {
			for i, v := range sum[:len(m.P)] {
				released[i] += v * inv
			}
		}
		unobservedGrad(m, sum[:len(m.P)], sum[len(m.P):], cfg.StatsScale, grad)
		for i := range grad {
			grad[i] *= inv
		}
		adam.step(m.P, grad)
		st.SubjectsSeen += int64(len(batch))
		st.StepsDone = step + 1
		if !finite(m.P) {
			return nil, nil, fmt.Errorf("%w: item factors diverged at step %d (lower learning_rate)", ErrDiverged, step+1)
		}
		if (step+1)%every == 0 || step+1 == plan.Steps {
			// No batch size: a Poisson batch's size is an exact count of
			// the private data, and logs are read by many.
			log.Debug("training", "step", step+1, "of", plan.Steps)
			if err := save(step + 1); err != nil {
				return nil, nil, fmt.Errorf("checkpoint after step %d: %w", step+1, err)
			}
		}
	}
	if private && !cfg.rawIterate {
		// Every coordinate of released carries the noise of every step,
		// N(0, (σC)²) each, divided by the normalizer.
		tau := plan.NoiseMultiplier * cfg.Clip / expected
		st.Shrink = shrinkToPrior(m, prior, released, float64(plan.Steps)*tau*tau)
	}
	st.Seconds = prevSeconds + time.Since(start).Seconds()
	if st.SubjectsSeen > 0 {
		st.ClippedShare = float64(clipped) / float64(st.SubjectsSeen)
		st.MeanNorm = normSum / float64(st.SubjectsSeen)
	}
	st.SubjectsPerSec = float64(st.SubjectsSeen) / st.Seconds
	st.SecondsPerEp = st.Seconds / (float64(plan.Steps) * plan.SamplingRate)
	return m, st, nil
}

// finite reports whether every factor is a number of a sane size: factors
// beyond 1e8 mean the optimizer diverged long before they overflow.
func finite(x []float64) bool {
	for _, v := range x {
		if !(math.Abs(v) <= 1e8) {
			return false
		}
	}
	return true
}

// unobservedGrad adds to the summed observed-item gradient the gradient of
// the unobserved term for every item j, 2·w0·Σ_s (u_s·v_j + b_j)·[u_s, 1],
// from the summed statistics S = Σ u uᵀ, s = Σ u, n = Σ 1 (released with
// the gradient, scaled by alpha), into grad.
func unobservedGrad(m *Model, sparse, stats []float64, alpha float64, grad []float64) {
	d := m.Dim
	w := d + 1
	S := stats[:d*d]
	sv := stats[d*d : d*d+d]
	n := stats[d*d+d] / alpha
	k := 2 * m.Unobserved / alpha
	for j := range m.Items {
		r := m.Row(j)
		g := grad[j*w : (j+1)*w]
		sp := sparse[j*w : (j+1)*w]
		b := r[d]
		sb := 0.0
		for p := range d {
			t := 0.0
			Sp := S[p*d : (p+1)*d]
			for q := range d {
				t += Sp[q] * r[q]
			}
			g[p] = sp[p] + k*(t+b*sv[p])
			sb += sv[p] * r[p]
		}
		g[d] = sp[d] + k*sb + 2*m.Unobserved*n*b
	}
}

// gradScratch is one worker's scratch for subject gradients.
type gradScratch struct {
	u, a, rhs []float64
	pos       []int32 // item -> 1 + index in items, for the current subject
	items     []int32
	coef      []float64
	pcg       *rand.PCG // negatives: seeded per (subject, step)
	r         *rand.Rand
	normSum   float64
	lastNorm  float64
}

func newGradScratch(dim, nItems int) *gradScratch {
	pcg := rand.NewPCG(0, 0)
	return &gradScratch{u: make([]float64, dim), a: make([]float64, dim*dim), rhs: make([]float64, dim),
		pos: make([]int32, nItems), pcg: pcg, r: rand.New(pcg)}
}

// subjectKey hashes a subject id (FNV-1a) to key its randomness.
func subjectKey(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(id) {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// subject adds one subject's (clipped) gradient to acc and reports whether
// the clip scaled it down. The gradient, with the subject's factor u held
// fixed, is -2 c_j (p_j - u·v_j - b_j) [u, 1] for each observed item j;
// the unobserved items' part follows from the statistics [u uᵀ, u, 1]
// (see unobservedGrad), so no item is sampled.
func (g *gradScratch) subject(s *Solver, rows []Interaction, cfg Config, private bool, acc []float64) (bool, error) {
	if len(rows) == 0 {
		return false, nil
	}
	m, d := s.m, s.m.Dim
	if err := s.Solve(rows, g.u, g.a, g.rhs); err != nil {
		return false, err
	}
	g.items, g.coef = g.items[:0], g.coef[:0]
	add := func(j int32, c float64) {
		if k := g.pos[j]; k > 0 {
			g.coef[k-1] += c
			return
		}
		g.items = append(g.items, j)
		g.coef = append(g.coef, c)
		g.pos[j] = int32(len(g.items))
	}
	pred := func(j int32) float64 {
		r := m.Row(int(j))
		p := r[d]
		for q := range d {
			p += g.u[q] * r[q]
		}
		return p
	}
	w0 := m.Unobserved
	for _, x := range rows {
		p := pred(x.Item)
		add(x.Item, -2*(float64(x.Weight)*(1-p)+w0*p))
	}
	alpha := cfg.StatsScale
	if cfg.gradHook != nil && cfg.gradHook(g, rows) {
		alpha = 0 // a white-box audit canary's Dirac gradient (whitebox.go): no statistics
	}
	uu := 0.0
	for _, v := range g.u {
		uu += v * v
	}
	norm2 := 0.0
	for _, c := range g.coef {
		norm2 += c * c
	}
	norm := math.Sqrt(norm2*(uu+1) + alpha*alpha*(uu*uu+uu+1))
	g.normSum += norm
	g.lastNorm = norm
	f, wasClipped := 1.0, false
	if private && norm > cfg.Clip && !cfg.brokenNoClip {
		f, wasClipped = cfg.Clip/norm, true
	}
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return false, fmt.Errorf("%w: a subject gradient is not finite", ErrDiverged)
	}
	stats := acc[len(m.P):]
	fa := f * alpha
	for p := range d {
		up := g.u[p] * fa
		sp := stats[p*d : (p+1)*d]
		for q := range d {
			sp[q] += up * g.u[q]
		}
		stats[d*d+p] += up
	}
	stats[d*d+d] += fa
	w := d + 1
	for k, j := range g.items {
		c := g.coef[k] * f
		row := acc[int(j)*w : int(j)*w+w]
		for q := range d {
			row[q] += c * g.u[q]
		}
		row[d] += c
		g.pos[j] = 0
	}
	return wasClipped, nil
}

// adam is Adam on the noisy gradient: post-processing of DP releases.
type adam struct {
	m1, m2 []float64
	lr     float64
	t      int
	sgd    bool // SGD with momentum 0.9 instead
}

func newAdam(n int, lr float64) *adam {
	return &adam{m1: make([]float64, n), m2: make([]float64, n), lr: lr}
}

func (a *adam) step(x, g []float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	a.t++
	if a.sgd {
		for i, gi := range g {
			a.m1[i] = b1*a.m1[i] + gi
			x[i] -= a.lr * a.m1[i]
		}
		return
	}
	c1 := 1 - math.Pow(b1, float64(a.t))
	c2 := 1 - math.Pow(b2, float64(a.t))
	for i, gi := range g {
		a.m1[i] = b1*a.m1[i] + (1-b1)*gi
		a.m2[i] = b2*a.m2[i] + (1-b2)*gi*gi
		x[i] -= a.lr * (a.m1[i] / c1) / (math.Sqrt(a.m2[i]/c2) + eps)
	}
}
