package mf

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/veil-privacy/veil/privacy/accountant"
)

// Config sets up a training run.
type Config struct {
	Dim             int     `yaml:"dim"`               // factor dimension d (default 32)
	Epochs          float64 `yaml:"epochs"`            // passes over the subjects, in expectation (default 2)
	SamplingRate    float64 `yaml:"sampling_rate"`     // q: each subject joins each step with this probability (default 0.4)
	LearningRate    float64 `yaml:"learning_rate"`     // Adam step (default 0.05)
	Optimizer       string  `yaml:"optimizer"`         // adam (default) or sgd (momentum 0.9)
	Lambda          float64 `yaml:"lambda"`            // ridge of each subject's own solve (default 1)
	Unobserved      float64 `yaml:"unobserved_weight"` // weight of items a subject did not touch (default 0.05)
	MaxInteractions int     `yaml:"max_interactions"`  // per subject, sampled uniformly (default 200)
	Clip            float64 `yaml:"clip_norm"`         // L2 bound C of a subject's whole gradient (default 1)
	// StatsScale weighs a subject's statistics [u uᵀ, u, 1] against its
	// item gradient inside the clipped vector (default 0.3).
	StatsScale float64 `yaml:"stats_scale"`
	// Epsilon and Delta are the target. Epsilon is positive and finite,
	// or exactly +Inf (.inf in YAML) to train without privacy (no clipping,
	// no noise) on the same code path; zero, negative values, -Inf and NaN
	// are configuration errors, never a way to turn DP off.
	Epsilon    float64 `yaml:"epsilon"`
	Delta      float64 `yaml:"delta"`
	Accountant string  `yaml:"accountant"` // rdp or pld (default pld)
	Seed       uint64  `yaml:"seed"`       // initialization and negatives; noise is never seeded
	Workers    int     `yaml:"workers"`
	// HistogramItems is k of the DP item-count histogram that starts the
	// model at popularity and (without a catalog) selects the items: each
	// subject counts for at most k distinct items of its own, chosen with
	// its own keyed randomness. 0 (the default) chooses from the run's
	// public settings: with a catalog there is no partition selection and
	// k is max_interactions, so that every item of a subject's bounded rows
	// counts and the prior ranks items as popularity does (a cap of 16
	// counts a random 16 of an active customer's items: on Online Retail
	// even a nearly noise-free prior so capped ranks worse than
	// popularity); without one, 16 (partition selection's threshold grows
	// with k, by the noise's √(k+1) and a union over k items).
	HistogramItems int `yaml:"histogram_items"`
	// HistogramShare is the share of ε the histogram is calibrated to on
	// its own (default 0.5); DP-SGD gets what is left of ε after
	// composition with it.
	HistogramShare float64 `yaml:"histogram_share"`
	// Catalog is the public item universe (a product catalog's item ids):
	// the model has exactly these items and interactions with others are
	// dropped. Nil: in a private run the items are chosen by DP partition
	// selection on the histogram; without privacy, every item of the data.
	Catalog []string `yaml:"-" json:"-"`
	// catalogNamed says a job names a catalog not read yet: planning
	// before any read (train.JobConfig.Releases, through NamedCatalog) plans
	// no partition selection.
	catalogNamed bool

	// rawIterate releases DP-SGD's last iterate without the shrinkage
	// toward the prior (shrinkToPrior): the black-box privacy audit observes
	// that, of which the shrunk model is post-processing, so that a
	// mechanism fault is not hidden by a shrinkage that assumes the planned
	// noise.
	rawIterate bool
	// Source of noise and sampling; nil: the secure source. Tests only.
	source func() rand.Source
	// brokenNoNoise skips the noise while the plan still claims its ε: a
	// deliberately broken trainer, for the privacy audit's tests only.
	brokenNoNoise bool
	// stepHook, when set, is called at every step with the exact clipped
	// sum and the released (noisy) sum, before the update. Tests only.
	stepHook func(step int, exact, released []float64)
	// gradHook, when set, may replace a subject's gradient before it is
	// clipped (the white-box audit's Dirac canaries, whitebox.go); true:
	// replaced, and the subject releases no statistics.
	gradHook func(g *gradScratch, rows []Interaction) bool
	// Deliberately broken trainers for the white-box audit's tests only:
	// brokenNoise replaces the step's noise, brokenRate the sampling rate
	// (> 0), brokenNoClip skips the clipping.
	brokenNoise  func(sum []float64, sd float64, newSource func() rand.Source)
	brokenRate   float64
	brokenNoClip bool
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{Dim: 32, Epochs: 2, SamplingRate: 0.4, LearningRate: 0.05, Optimizer: "adam", Lambda: 1, Unobserved: 0.05,
		MaxInteractions: 200, Clip: 1, StatsScale: 0.3, Delta: 1e-6, Accountant: "pld", Seed: 1, HistogramShare: 0.5}
}

// selectionHistogramItems is the histogram's k in a run with partition
// selection, unless the config sets one.
const selectionHistogramItems = 16

// histogramItems is the k the plan uses: the config's, or the default for
// the run's catalog (see HistogramItems).
func (c Config) histogramItems() int {
	switch {
	case c.HistogramItems > 0:
		return c.HistogramItems
	case len(c.Catalog) > 0 || c.catalogNamed:
		return c.MaxInteractions
	}
	return selectionHistogramItems
}

// NamedCatalog returns c for planning a job that names a catalog it has
// not read yet: its plan has no partition selection, as in a run, which
// reads the catalog before planning.
func (c Config) NamedCatalog() Config {
	c.catalogNamed = true
	return c
}

// Private reports whether the config asks for DP: every ε but +Inf that
// Validate accepts.
func (c Config) Private() bool { return !math.IsInf(c.Epsilon, 1) }

// Validate checks the settings.
// MaxSteps bounds a plan's steps (epochs / sampling_rate): a sampling rate
// so small that training would never end is a mistake in the settings.
const MaxSteps = 100_000

func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	switch {
	case c.Dim < 1 || c.Dim > 512:
		return bad("dim %d: want 1..512", c.Dim)
	case !(c.Epochs > 0) || c.Epochs > 1000:
		return bad("epochs %v: want (0, 1000]", c.Epochs)
	case !(c.SamplingRate > 0 && c.SamplingRate <= 1):
		return bad("sampling_rate %v: want (0, 1]", c.SamplingRate)
	case c.Epochs/c.SamplingRate > MaxSteps:
		return bad("epochs %v at sampling_rate %v are %.0f steps: want at most %d", c.Epochs, c.SamplingRate, math.Ceil(c.Epochs/c.SamplingRate), MaxSteps)
	case c.Optimizer != "adam" && c.Optimizer != "sgd":
		return bad("optimizer %q: want adam or sgd", c.Optimizer)
	case !(c.LearningRate > 0):
		return bad("learning_rate %v: want > 0", c.LearningRate)
	case !(c.Lambda > 0):
		return bad("lambda %v: want > 0", c.Lambda)
	case !(c.Unobserved > 0):
		return bad("unobserved_weight %v: want > 0", c.Unobserved)
	case !(c.StatsScale > 0):
		return bad("stats_scale %v: want > 0", c.StatsScale)
	case c.MaxInteractions < 1:
		return bad("max_interactions %d: want at least 1", c.MaxInteractions)
	case c.HistogramItems < 0 || c.HistogramItems > 10000:
		return bad("histogram_items %d: want 1..10000, or 0 for the default", c.HistogramItems)
	case !(c.HistogramShare > 0 && c.HistogramShare < 1):
		return bad("histogram_share %v: want (0, 1)", c.HistogramShare)
	case !(c.Epsilon > 0):
		return bad("epsilon %v: want a positive finite ε, or .inf to train without privacy", c.Epsilon)
	}
	if c.Private() {
		if !(c.Clip > 0) {
			return bad("clip_norm %v: want > 0", c.Clip)
		}
		if err := accountant.CheckDelta(c.Delta); err != nil {
			return bad("%v", err)
		}
		if c.Accountant != "rdp" && c.Accountant != "pld" {
			return bad("accountant %q: want rdp or pld", c.Accountant)
		}
	}
	return nil
}

// Plan is the privacy plan of a run: what the accountant is asked.
type Plan struct {
	SamplingRate    float64 `json:"sampling_rate"`
	Steps           int     `json:"steps"`
	NoiseMultiplier float64 `json:"noise_multiplier"` // σ: noise std is σ·C
	Epsilon         float64 `json:"epsilon"`          // what the plan spends (never above the target)
	Delta           float64 `json:"delta"`
	Accountant      string  `json:"accountant"`
	// The DP item-count histogram: at most HistogramItems items per
	// subject and one bin counting subjects, Gaussian noise of standard
	// deviation HistogramNoise·√(HistogramItems+1) (the L2 sensitivity).
	HistogramItems int     `json:"histogram_items"`
	HistogramNoise float64 `json:"histogram_noise_multiplier,omitempty"`
	// Partition selection (no catalog): items whose noisy count exceeds
	// Threshold are the model's items; an item only one subject holds
	// passes with probability at most SelectionDelta (added to δ).
	SelectionDelta float64 `json:"selection_delta,omitempty"`
	Threshold      float64 `json:"selection_threshold,omitempty"`

	target float64 // the ε asked for (curve points)
}

// MarshalJSON writes the ε of a non-private plan (+Inf) as null.
func (p Plan) MarshalJSON() ([]byte, error) {
	type plain Plan
	v := struct {
		plain
		Epsilon *float64 `json:"epsilon"`
	}{plain: plain(p)}
	if !math.IsInf(p.Epsilon, 1) {
		v.Epsilon = &p.Epsilon
	}
	return json.Marshal(v)
}

// Target is the ε a plan of CurvePlans was calibrated for; 0 for other
// plans.
func (p Plan) Target() float64 { return p.target }

// SGDEvent is the DP-SGD part of the plan: Poisson-subsampled Gaussian
// steps on the clipped subject gradients.
func (p Plan) SGDEvent() accountant.Event {
	return accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: p.SamplingRate, NoiseMultiplier: p.NoiseMultiplier,
		Count: p.Steps, Note: "DP-SGD on item factors and biases (per-subject clipping)"}
}

// Events are the plan's releases as accountant events: the item-count
// histogram (with the noisy subject count), DP-SGD, and the partition
// selection's δ when there is no catalog.
func (p Plan) Events() []accountant.Event {
	evs := []accountant.Event{
		{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: p.HistogramNoise, Count: 1,
			Note: fmt.Sprintf("DP item-count histogram and subject count (≤%d items per subject, L2 sensitivity √%d)", p.HistogramItems, p.HistogramItems+1)},
		p.SGDEvent(),
	}
	if p.SelectionDelta > 0 {
		evs = append(evs, accountant.Event{Mechanism: accountant.PureDelta, Delta: p.SelectionDelta, Count: 1,
			Note: fmt.Sprintf("DP partition selection of the item ids (Gaussian thresholding at %.4g)", p.Threshold)})
	}
	return evs
}

// MakePlan calibrates σ for the target. It depends on the settings only,
// never on the data, so that the spend is known and checked against the
// budget before any data is read.
func (c Config) MakePlan() (Plan, error) {
	if err := c.Validate(); err != nil {
		return Plan{}, err
	}
	q := c.SamplingRate
	steps := max(1, int(math.Ceil(c.Epochs/q)))
	k := c.histogramItems()
	p := Plan{SamplingRate: q, Steps: steps, Delta: c.Delta, Accountant: c.Accountant, Epsilon: math.Inf(1), HistogramItems: k}
	if !c.Private() {
		return p, nil
	}
	// Without a catalog, half of δ goes to partition selection.
	gaussDelta := c.Delta
	if len(c.Catalog) == 0 && !c.catalogNamed {
		p.SelectionDelta = c.Delta / 2
		gaussDelta -= p.SelectionDelta
	}
	hist, err := accountant.Calibrate(c.Accountant, c.HistogramShare*c.Epsilon, 1, 1, gaussDelta)
	if err != nil {
		return Plan{}, fmt.Errorf("%w: calibrating the item histogram's noise for ε %v: %w", ErrConfig, c.HistogramShare*c.Epsilon, err)
	}
	p.HistogramNoise = hist.NoiseMultiplier
	if p.SelectionDelta > 0 {
		// Gaussian thresholding (Google's partition selection): a subject
		// holds at most k items; each item only it holds has a noisy count
		// 1 + N(0, s²) and must pass the threshold with probability at most
		// 1 - (1-δ_sel)^(1/k), so that any of them passes with at most δ_sel.
		sd := p.HistogramNoise * math.Sqrt(float64(k+1))
		perItem := -math.Expm1(math.Log1p(-p.SelectionDelta) / float64(k))
		p.Threshold = 1 + sd*math.Sqrt2*math.Erfcinv(2*perItem)
	}
	evs := p.Events()
	fixed := []accountant.Event{evs[0]}
	if len(evs) > 2 {
		fixed = append(fixed, evs[2])
	}
	cal, err := accountant.CalibrateWith(c.Accountant, c.Epsilon, q, steps, c.Delta, fixed...)
	if err != nil {
		return Plan{}, fmt.Errorf("%w: calibrating noise for ε %v, δ %v, q %.4g, %d steps: %w", ErrConfig, c.Epsilon, c.Delta, q, steps, err)
	}
	p.NoiseMultiplier, p.Epsilon = cal.NoiseMultiplier, cal.Epsilon
	return p, nil
}

// Model is the released model: item factors and biases.
type Model struct {
	Dim   int
	Items []string
	P     []float64 // item j: P[j*(Dim+1):][:Dim] factors, P[j*(Dim+1)+Dim] bias
	// Solve settings subjects use with the released model.
	Lambda, Unobserved float64
}

// Row returns item j's factors followed by its bias: a slice of m.P, not
// a copy.
func (m *Model) Row(j int) []float64 { w := m.Dim + 1; return m.P[j*w : (j+1)*w : (j+1)*w] }

// Solver solves subjects' factors from a model: the closed form of the
// implicit-feedback objective (Hu, Koren and Volinsky 2008) with weight 1
// on a subject's items (times their weight) and Unobserved on all others,
// from the Gramian of the item factors.
type Solver struct {
	m    *Model
	gram []float64 // Unobserved * VᵀV
	vtb  []float64 // Unobserved * Vᵀb
}

// NewSolver precomputes the Gramians.
func NewSolver(m *Model) *Solver {
	d := m.Dim
	s := &Solver{m: m, gram: make([]float64, d*d), vtb: make([]float64, d)}
	// The lower triangle, four items at a time with the vector kernel
	// (weight 1: the same multiply-adds, item after item), then the upper
	// one by symmetry: fma(r_a, r_c, g) = fma(r_c, r_a, g) exactly, so
	// every entry has the bits of adding one item after another to the
	// full matrix.
	n, j := len(m.Items), 0
	one := &[4]float64{1, 1, 1, 1}
	for ; j+4 <= n; j += 4 {
		if !gramAdd4(s.gram, d, m.Row(j)[:d], m.Row(j + 1)[:d], m.Row(j + 2)[:d], m.Row(j + 3)[:d], one) {
			break
		}
	}
	for ; j < n; j++ {
		r := m.Row(j)
		for a := range d {
			ra := r[a]
			g := s.gram[a*d : a*d+a+1]
			for c := range g {
				g[c] = math.FMA(ra, r[c], g[c])
			}
		}
	}
	for a := range d {
		for c := a + 1; c < d; c++ {
			s.gram[a*d+c] = s.gram[c*d+a]
		}
	}
	for j := range n {
		r := m.Row(j)
		for a := range d {
			s.vtb[a] += r[a] * r[d]
		}
	}
	for i := range s.gram {
		s.gram[i] *= m.Unobserved
	}
	for i := range s.vtb {
		s.vtb[i] *= m.Unobserved
	}
	return s
}

// Solve returns the factor u of a subject with these interactions; a and
// rhs are scratch of d*d and d. On success the lower triangle of a holds
// the Cholesky factor of the subject's system (the reasons of its
// recommendations reuse it).
//
// Only the lower triangle of a is built, the only part cholSolve reads,
// four interactions at a time; every entry gets the same operations in
// the same order as adding one interaction after another, so that u is
// the same to the last bit.
func (s *Solver) Solve(rows []Interaction, u, a, rhs []float64) error {
	m, d := s.m, s.m.Dim
	copy(a, s.gram)
	for i := range d {
		a[i*d+i] += m.Lambda
		rhs[i] = -s.vtb[i]
	}
	w0 := m.Unobserved
	// The item rows are scattered over the model: load one word of each
	// cache line of every row first, in a loop short enough for the
	// processor to have the misses outstanding together, rather than one
	// row at a time in the loops below. (The sum is stored in u, which
	// cholSolve overwrites, so that the loads are kept.)
	touch := 0.0
	for _, x := range rows {
		r := m.Row(int(x.Item))
		for q := 0; q < len(r); q += 8 {
			touch += r[q]
		}
	}
	u[0] = touch
	// rhs gets, for each interaction in turn, c·(1-b)·r + w0·b·r: target 1
	// with weight c, minus the w0 already counted with target 0.
	// (c·(1-b) and w0·b are the left products of each term as Go
	// evaluates it: hoisting them keeps the bits.)
	for _, x := range rows {
		r := m.Row(int(x.Item))
		c := float64(x.Weight)
		b := r[d]
		rhsAdd(rhs[:d], r, c*(1-b), w0*b)
	}
	s.addOuter(a, rows)
	return solveSystem(a, rhs, u, d)
}

// addOuter adds (c - w0)·r rᵀ to the lower triangle of a for each
// interaction, c its confidence and r its item's factor, four
// interactions at a time; every entry gets the same operations in the same
// order as adding one interaction after another: a[p][q] =
// fma((c-w0)·r[p], r[q], a[p][q]), fused, so that a CPU without the vector
// kernel (math.FMA in software) gets the same bits.
func (s *Solver) addOuter(a []float64, rows []Interaction) {
	m, d, w0 := s.m, s.m.Dim, s.m.Unobserved
	i := 0
	for ; i+4 <= len(rows); i += 4 {
		r0, r1, r2, r3 := m.Row(int(rows[i].Item))[:d], m.Row(int(rows[i+1].Item))[:d], m.Row(int(rows[i+2].Item))[:d], m.Row(int(rows[i+3].Item))[:d]
		e0, e1, e2, e3 := float64(rows[i].Weight)-w0, float64(rows[i+1].Weight)-w0, float64(rows[i+2].Weight)-w0, float64(rows[i+3].Weight)-w0
		if gramAdd4(a, d, r0, r1, r2, r3, &[4]float64{e0, e1, e2, e3}) {
			continue
		}
		for p := range d {
			f0, f1, f2, f3 := e0*r0[p], e1*r1[p], e2*r2[p], e3*r3[p]
			ap := a[p*d : p*d+p+1]
			q0, q1, q2, q3 := r0[:len(ap)], r1[:len(ap)], r2[:len(ap)], r3[:len(ap)]
			for q, v := range ap {
				v = math.FMA(f0, q0[q], v)
				v = math.FMA(f1, q1[q], v)
				v = math.FMA(f2, q2[q], v)
				v = math.FMA(f3, q3[q], v)
				ap[q] = v
			}
		}
	}
	for ; i < len(rows); i++ {
		r := m.Row(int(rows[i].Item))[:d]
		e := float64(rows[i].Weight) - w0
		for p := range d {
			f := e * r[p]
			ap := a[p*d : p*d+p+1]
			for q, rq := range r[:len(ap)] {
				ap[q] = math.FMA(f, rq, ap[q])
			}
		}
	}
}

// cholSolve solves a x = b for symmetric positive definite a (d×d, row
// major, overwritten by its Cholesky factor).
func cholSolve(a, b, x []float64, d int) error {
	if err := cholFactor(a, d); err != nil {
		return err
	}
	cholSolveFactored(a, b, x, d)
	return nil
}

// cholFactor overwrites the lower triangle of the symmetric positive
// definite a (d×d, row major) with its Cholesky factor L, a = L Lᵀ.
func cholFactor(a []float64, d int) error {
	for j := range d {
		s := a[j*d+j]
		for k := range j {
			s -= a[j*d+k] * a[j*d+k]
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: subject system not positive definite", ErrDiverged)
		}
		s = math.Sqrt(s)
		a[j*d+j] = s
		// Rows below j four at a time: four independent chains, each
		// with the operations and order of one row alone.
		aj := a[j*d : j*d+j]
		i := j + 1
		for ; i+4 <= d; i += 4 {
			r0, r1, r2, r3 := a[i*d:i*d+j], a[(i+1)*d:(i+1)*d+j], a[(i+2)*d:(i+2)*d+j], a[(i+3)*d:(i+3)*d+j]
			t0, t1, t2, t3 := a[i*d+j], a[(i+1)*d+j], a[(i+2)*d+j], a[(i+3)*d+j]
			for k, v := range aj {
				t0 -= r0[k] * v
				t1 -= r1[k] * v
				t2 -= r2[k] * v
				t3 -= r3[k] * v
			}
			a[i*d+j], a[(i+1)*d+j], a[(i+2)*d+j], a[(i+3)*d+j] = t0/s, t1/s, t2/s, t3/s
		}
		for ; i < d; i++ {
			t := a[i*d+j]
			for k, v := range aj {
				t -= a[i*d+k] * v
			}
			a[i*d+j] = t / s
		}
	}
	return nil
}

// cholSolveFactored solves L Lᵀ x = b for the factor of cholFactor.
func cholSolveFactored(l, b, x []float64, d int) {
	for i := range d {
		t := b[i]
		for k := range i {
			t -= l[i*d+k] * x[k]
		}
		x[i] = t / l[i*d+i]
	}
	for i := d - 1; i >= 0; i-- {
		t := x[i]
		for k := i + 1; k < d; k++ {
			t -= l[k*d+i] * x[k]
		}
		x[i] = t / l[i*d+i]
	}
}

// Score writes u·v_j + b_j for every item into scores.
func (m *Model) Score(u []float64, scores []float64) {
	d := m.Dim
	for j := range m.Items {
		r := m.Row(j)
		s := r[d]
		for p := range d {
			s += u[p] * r[p]
		}
		scores[j] = s
	}
}

// bound samples at most max interactions of a subject, uniformly.
func bound(rows []Interaction, limit int, r *rand.Rand) []Interaction {
	if len(rows) <= limit {
		return rows
	}
	idx := r.Perm(len(rows))[:limit]
	out := make([]Interaction, limit)
	for i, k := range idx {
		out[i] = rows[k]
	}
	return out
}

// CurvePlans plans one private run per target ε, with cfg's other settings.
func CurvePlans(cfg Config, epsilons []float64) ([]Plan, error) {
	var plans []Plan
	for _, eps := range epsilons {
		c := cfg
		c.Epsilon = eps
		p, err := c.MakePlan()
		if err != nil {
			return nil, fmt.Errorf("curve point ε %v: %w", eps, err)
		}
		p.target = eps
		plans = append(plans, p)
	}
	return plans, nil
}
