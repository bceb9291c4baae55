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
	"sync/atomic"
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

// CheckpointInterval is the least training time between two checkpoints
// at the default cadence (FitOptions.CheckpointEvery 0).
const CheckpointInterval = 30 * time.Second

// FitOptions are the operational settings of Fit.
type FitOptions struct {
	Log *slog.Logger
	// Checkpoint, when set, is called with the state every
	// CheckpointEvery steps and after the last step; an error stops
	// training. By default (0) every tenth of the plan, but at most once
	// per CheckpointInterval of training: saving a large model after every
	// step of a short run costs more than the steps a crash could lose.
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
	if err := checkFit(d, cfg, plan); err != nil {
		return nil, nil, err
	}
	f := newFitter(d, cfg, plan, opt)
	bounded := f.boundContributions(d)
	if err := f.chooseItems(d, bounded); err != nil {
		return nil, nil, err
	}
	f.initModel()
	if err := f.resume(); err != nil {
		return nil, nil, err
	}
	f.st.Popularity = priorPopularity(f.prior, f.dim, len(f.m.Items))
	if err := f.descend(ctx); err != nil {
		return nil, nil, err
	}
	f.finish()
	return f.m, f.st, nil
}

// checkFit refuses settings, plans and data Fit cannot train on.
func checkFit(d *Data, cfg Config, plan Plan) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(d.Items) == 0 || d.Interactions() == 0 {
		return fmt.Errorf("%w: no interactions", ErrInput)
	}
	if plan.SamplingRate != cfg.SamplingRate {
		return fmt.Errorf("%w: the plan samples at q %v, the config at %v", ErrConfig, plan.SamplingRate, cfg.SamplingRate)
	}
	if cfg.Private() && !(plan.NoiseMultiplier > 0) {
		return fmt.Errorf("%w: a private run needs a calibrated noise multiplier", ErrConfig)
	}
	return nil
}

// fitter is the state of one Fit call, built up step by step.
type fitter struct {
	cfg       Config
	plan      Plan
	opt       FitOptions
	log       *slog.Logger
	private   bool
	workers   int
	dim       int
	newSource func() rand.Source
	start     time.Time
	st        *Stats

	keys []uint64        // per subject: the key of its own randomness
	u    *universe       // the model's items and the popularity prior
	rows [][]Interaction // per subject: bounded, in the model's items

	m *Model
	// prior is where training starts; released sums the released item rows
	// of the update: the shrinkage toward the prior after the last step
	// weighs what was learned by how much of it the noise explains.
	prior, released []float64
	adam            *adam
	first           int // the first step to take (after a resumed checkpoint's)
	clipped         int64
	normSum         float64
	prevSeconds     float64 // of the run a checkpoint resumes
}

func newFitter(d *Data, cfg Config, plan Plan, opt FitOptions) *fitter {
	f := &fitter{cfg: cfg, plan: plan, opt: opt, log: opt.Log, private: cfg.Private(), workers: cfg.Workers, dim: cfg.Dim, newSource: cfg.source}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.start = time.Now()
	if f.workers <= 0 {
		f.workers = runtime.GOMAXPROCS(0)
	}
	if f.newSource == nil {
		f.newSource = func() rand.Source { return dp.NewSecureSource() }
	}
	f.st = &Stats{Plan: plan, Private: f.private, Subjects: len(d.Subjects)}
	if f.private {
		f.st.Clip = cfg.Clip
	}
	return f
}

// boundContributions samples each subject's rows down to MaxInteractions,
// once per subject. Each subject's randomness (bounding, negatives) is
// keyed by its own id, never drawn from a stream shared with other
// subjects: adding or removing a subject changes nothing in anyone else's
// gradient.
func (f *fitter) boundContributions(d *Data) [][]Interaction {
	f.keys = make([]uint64, len(d.Subjects))
	bounded := make([][]Interaction, len(d.Rows))
	for s, r := range d.Rows {
		f.keys[s] = subjectKey(d.Subjects[s])
		bounded[s] = bound(r, f.cfg.MaxInteractions, rand.New(rand.NewPCG(f.cfg.Seed^f.keys[s], 0xb0d)))
		if len(bounded[s]) < len(r) {
			f.st.Bounded++
		}
	}
	return bounded
}

// chooseItems fixes the item universe and the popularity prior: the DP
// item-count histogram (charged in the plan) or, on resume, what the
// checkpoint kept of it: it is released once per run, never drawn again.
// The bounded rows are remapped to the model's items.
func (f *fitter) chooseItems(d *Data, bounded [][]Interaction) error {
	if c := f.opt.Resume; c != nil && len(c.ItemIDs) > 0 {
		f.u = &universe{items: c.ItemIDs, index: itemIndex(d.Items, c.ItemIDs), subjects: c.NoisySubjects}
	} else {
		var err error
		if f.u, err = itemUniverse(d, bounded, f.keys, f.cfg, f.plan, f.private, f.newSource); err != nil {
			return err
		}
	}
	rows, dropped := remapRows(bounded, f.u.index)
	for _, r := range rows {
		f.st.Interactions += len(r)
	}
	f.rows = rows
	f.st.Items, f.st.DroppedOutsideItems = len(f.u.items), dropped
	// The update is normalized by q·Ñ with Ñ the histogram's subject count:
	// noisy and charged in a private run, so the update's scale does not
	// depend on the exact number of subjects (exact without privacy).
	f.st.Normalizer = f.plan.SamplingRate * f.u.subjects
	return nil
}

// initModel draws the initial factors from the seed and sets the biases
// from the released histogram only.
func (f *fitter) initModel() {
	dim, nItems := f.dim, len(f.u.items)
	m := &Model{Dim: dim, Items: f.u.items, P: make([]float64, nItems*(dim+1)), Lambda: f.cfg.Lambda, Unobserved: f.cfg.Unobserved}
	ir := rand.New(rand.NewPCG(f.cfg.Seed, 0x1417))
	for j := range nItems {
		r := m.Row(j)
		for p := range dim {
			r[p] = ir.NormFloat64() * 0.1 / math.Sqrt(float64(dim))
		}
		if f.u.counts != nil {
			r[dim] = priorBias(f.u.counts[j], f.u.subjects, f.cfg.Unobserved)
		}
	}
	f.m = m
	f.prior = slices.Clone(m.P)
	f.released = make([]float64, len(m.P))
	f.adam = newAdam(len(m.P), f.cfg.LearningRate)
	f.adam.sgd = f.cfg.Optimizer == "sgd"
}

// resume continues from opt.Resume, if set, after checking that it was
// made by the same plan, settings and items.
func (f *fitter) resume() error {
	c := f.opt.Resume
	if c == nil {
		return nil
	}
	switch {
	case c.Plan != f.plan:
		return fmt.Errorf("%w: it was made by another privacy plan (%+v, now %+v)", ErrCheckpoint, c.Plan, f.plan)
	case c.Config != f.cfg.fingerprint():
		return fmt.Errorf("%w: it was made with other training settings", ErrCheckpoint)
	case c.Items != itemsFingerprint(f.m.Items) || c.Dim != f.dim || len(c.P) != len(f.m.P):
		return fmt.Errorf("%w: it was made for another item list or dimension", ErrCheckpoint)
	}
	if len(c.Prior) != len(f.m.P) || len(c.Released) != len(f.m.P) {
		return fmt.Errorf("%w: it holds no prior or released sums", ErrCheckpoint)
	}
	copy(f.m.P, c.P)
	copy(f.prior, c.Prior)
	copy(f.released, c.Released)
	copy(f.adam.m1, c.M1)
	copy(f.adam.m2, c.M2)
	f.adam.t, f.first = c.AdamT, c.StepsDone
	f.st.SubjectsSeen, f.clipped, f.normSum, f.prevSeconds = c.Seen, c.Clipped, c.NormSum, c.Seconds
	f.st.StepsDone = f.first
	f.log.Info("resuming training", "step", f.first, "of", f.plan.Steps)
	return nil
}

// save hands the state after step to opt.Checkpoint, if set.
func (f *fitter) save(step int) error {
	if f.opt.Checkpoint == nil {
		return nil
	}
	m, st := f.m, f.st
	return f.opt.Checkpoint(&Checkpoint{RunID: f.opt.RunID, Plan: f.plan, Config: f.cfg.fingerprint(), Items: itemsFingerprint(m.Items), ItemIDs: m.Items, NoisySubjects: f.u.subjects,
		Dim: f.dim, NItems: len(m.Items), StepsDone: step, AdamT: f.adam.t, Seen: st.SubjectsSeen, Clipped: f.clipped, NormSum: f.normSum,
		Seconds: f.prevSeconds + time.Since(f.start).Seconds(), P: m.P, M1: f.adam.m1, M2: f.adam.m2, Prior: f.prior, Released: f.released})
}

// descend runs the plan's DP-SGD steps from f.first on. Each subject's
// released vector is its sparse gradient on the items it touched, followed
// by α·[u uᵀ, u, 1]: the statistics from which the gradient of the
// unobserved items (all of them) follows for every item at once. The whole
// vector is clipped to C and noised as one Gaussian mechanism.
func (f *fitter) descend(ctx context.Context) error {
	cfg, plan, m := f.cfg, f.plan, f.m
	every := f.opt.CheckpointEvery
	timed := every <= 0
	if timed {
		every = max(1, plan.Steps/10)
	}
	saved := time.Now()
	nStats := f.dim*f.dim + f.dim + 1
	accs := make([][]float64, f.workers)
	for i := range accs {
		accs[i] = make([]float64, len(m.P)+nStats)
	}
	grad := make([]float64, len(m.P))
	expected := f.st.Normalizer
	sampler := rand.New(f.newSource())
	batch := make([]int, 0, int(expected*1.5)+16)
	rate := plan.SamplingRate
	if cfg.brokenRate > 0 {
		rate = cfg.brokenRate // a deliberately wrong sampler: the white-box audit's tests only
	}
	for step := f.first; step < plan.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch = batch[:0]
		for s := range f.rows {
			if rate >= 1 || sampler.Float64() < rate {
				batch = append(batch, s)
			}
		}
		if err := f.gradients(step, batch, accs); err != nil {
			return err
		}
		sum := accs[0]
		f.split(len(sum), func(lo, hi int) {
			for _, a := range accs[1:] {
				for i, v := range a[lo:hi] {
					sum[lo+i] += v
				}
			}
		})
		f.addNoise(step, sum)
		if !f.update(sum, grad, 1/expected) {
			return fmt.Errorf("%w: item factors diverged at step %d (lower learning_rate)", ErrDiverged, step+1)
		}
		f.st.SubjectsSeen += int64(len(batch))
		f.st.StepsDone = step + 1
		if (step+1)%every == 0 || step+1 == plan.Steps {
			// No batch size: a Poisson batch's size is an exact count of
			// the private data, and logs are read by many.
			f.log.Debug("training", "step", step+1, "of", plan.Steps)
			if step+1 == plan.Steps || !timed || time.Since(saved) >= CheckpointInterval {
				if err := f.save(step + 1); err != nil {
					return fmt.Errorf("checkpoint after step %d: %w", step+1, err)
				}
				saved = time.Now()
			}
		}
	}
	return nil
}

// split calls fn on ranges [lo, hi) that cover [0, n), one per worker
// goroutine at once. The ranges are cut by position only and every entry is
// computed by itself, so results do not depend on the number of workers.
func (f *fitter) split(n int, fn func(lo, hi int)) {
	if f.workers <= 1 || n < 4096 {
		fn(0, n)
		return
	}
	chunk := (n + f.workers - 1) / f.workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, min(lo+chunk, n))
		}()
	}
	wg.Wait()
}

// update takes one optimizer step from the noisy sum of a step (the item
// rows' gradients, then the statistics) scaled by inv, the items split over
// the workers; grad is scratch of len(m.P). It reports whether every factor
// stayed finite.
func (f *fitter) update(sum, grad []float64, inv float64) bool {
	m, d := f.m, f.m.Dim
	w := d + 1
	stats := sum[len(m.P):]
	st := transposeStats(stats, d)
	c1, c2 := f.adam.next()
	var diverged atomic.Bool
	f.split(len(m.Items), func(lo, hi int) {
		p0, p1 := lo*w, hi*w
		if f.private {
			for i, v := range sum[p0:p1] {
				f.released[p0+i] += v * inv
			}
		}
		unobservedGrad(m, sum[:len(m.P)], stats, st, f.cfg.StatsScale, grad, lo, hi)
		g := grad[p0:p1]
		for i := range g {
			g[i] *= inv
		}
		f.adam.update(m.P[p0:p1], g, f.adam.m1[p0:p1], f.adam.m2[p0:p1], c1, c2)
		if !finite(m.P[p0:p1]) {
			diverged.Store(true)
		}
	})
	return !diverged.Load()
}

// gradients sums the clipped gradients of the batch's subjects at step
// into accs, one accumulator per worker goroutine.
func (f *fitter) gradients(step int, batch []int, accs [][]float64) error {
	solver := NewSolver(f.m)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for wk := range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := accs[wk]
			clear(acc)
			g := newGradScratch(f.dim, len(f.m.Items))
			var nClip int64
			for k := wk; k < len(batch); k += f.workers {
				s := batch[k]
				g.pcg.Seed(f.cfg.Seed^f.keys[s], uint64(step))
				c, err := g.subject(solver, f.rows[s], f.cfg, f.private, acc)
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
			f.normSum += g.normSum
			f.clipped += nClip
			mu.Unlock()
		}()
	}
	wg.Wait()
	return firstErr
}

// addNoise adds the step's Gaussian noise to sum in a private run: fresh
// noise every step, added straight into this step's sum; nothing of an
// earlier step's noise is carried over.
func (f *fitter) addNoise(step int, sum []float64) {
	cfg := f.cfg
	var exact []float64
	if cfg.stepHook != nil {
		exact = slices.Clone(sum)
	}
	if f.private && !cfg.brokenNoNoise {
		if cfg.brokenNoise != nil {
			cfg.brokenNoise(sum, f.plan.NoiseMultiplier*cfg.Clip, f.newSource) // the white-box audit's tests only
		} else {
			dp.GaussianParallel(sum, f.plan.NoiseMultiplier*cfg.Clip, cfg.Clip, f.newSource)
		}
	}
	if cfg.stepHook != nil {
		cfg.stepHook(step, exact, sum)
	}
}

// finish shrinks a private model toward the prior and completes the
// statistics.
func (f *fitter) finish() {
	st, plan := f.st, f.plan
	if f.private && !f.cfg.rawIterate {
		// Every coordinate of released carries the noise of every step,
		// N(0, (σC)²) each, divided by the normalizer.
		tau := plan.NoiseMultiplier * f.cfg.Clip / st.Normalizer
		st.Shrink = shrinkToPrior(f.m, f.prior, f.released, float64(plan.Steps)*tau*tau)
	}
	st.Seconds = f.prevSeconds + time.Since(f.start).Seconds()
	if st.SubjectsSeen > 0 {
		st.ClippedShare = float64(f.clipped) / float64(st.SubjectsSeen)
		st.MeanNorm = f.normSum / float64(st.SubjectsSeen)
	}
	st.SubjectsPerSec = float64(st.SubjectsSeen) / st.Seconds
	st.SecondsPerEp = st.Seconds / (float64(plan.Steps) * plan.SamplingRate)
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
// the unobserved term for every item j in [lo, hi), 2·w0·Σ_s (u_s·v_j +
// b_j)·[u_s, 1], from the summed statistics S = Σ u uᵀ, s = Σ u, n = Σ 1
// (released with the gradient, scaled by alpha), into grad. st is Sᵀ
// (transposeStats): S·v_j is accumulated as Σ_q v_jq·(row q of Sᵀ) with
// the vector kernel (matVec), each entry the same products and sums in the
// same order as the dot product of row p of S with v_j. (S is not symmetric:
// under DP each entry has its own noise.)
func unobservedGrad(m *Model, sparse, stats, st []float64, alpha float64, grad []float64, lo, hi int) {
	d := m.Dim
	w := d + 1
	sv := stats[d*d : d*d+d]
	n := stats[d*d+d] / alpha
	k := 2 * m.Unobserved / alpha
	t := make([]float64, d)
	for j := lo; j < hi; j++ {
		r := m.Row(j)
		g := grad[j*w : (j+1)*w]
		sp := sparse[j*w : (j+1)*w]
		b := r[d]
		if !matVec(t, st, r[:d], d) {
			clear(t)
			for q, rq := range r[:d] {
				axpy(t, st[q*d:(q+1)*d], rq)
			}
		}
		sb := 0.0
		for p := range d {
			g[p] = sp[p] + k*(t[p]+b*sv[p])
			sb += sv[p] * r[p]
		}
		g[d] = sp[d] + k*sb + 2*m.Unobserved*n*b
	}
}

// transposeStats returns the transpose of the d×d matrix S at the start of
// the statistics.
func transposeStats(stats []float64, d int) []float64 {
	st := make([]float64, d*d)
	for p := range d {
		for q := range d {
			st[q*d+p] = stats[p*d+q]
		}
	}
	return st
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
		return r[d] + dotLanes(g.u, r[:d])
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
		axpy(stats[p*d:(p+1)*d], g.u, up)
		stats[d*d+p] += up
	}
	stats[d*d+d] += fa
	w := d + 1
	for k, j := range g.items {
		c := g.coef[k] * f
		// (The vector kernel also keeps more of these scattered rows'
		// cache misses in flight than a scalar loop of d steps.)
		row := acc[int(j)*w : int(j)*w+w]
		axpy(row[:d], g.u, c)
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

// next advances the step count and returns the bias corrections of the
// step, for update.
func (a *adam) next() (c1, c2 float64) {
	const b1, b2 = 0.9, 0.999
	a.t++
	return 1 - math.Pow(b1, float64(a.t)), 1 - math.Pow(b2, float64(a.t))
}

// update moves x by the gradient g, with m1 and m2 the moments of the same
// entries (a range of a.m1 and a.m2) and the corrections of next.
func (a *adam) update(x, g, m1, m2 []float64, c1, c2 float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	if a.sgd {
		for i, gi := range g {
			m1[i] = b1*m1[i] + gi
			x[i] -= a.lr * m1[i]
		}
		return
	}
	for i, gi := range g {
		m1[i] = b1*m1[i] + (1-b1)*gi
		m2[i] = b2*m2[i] + (1-b2)*gi*gi
		x[i] -= a.lr * (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + eps)
	}
}
