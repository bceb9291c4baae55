package mf

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/dp"
)

// WhiteBoxConfig sets up the white-box audit of DP-SGD.
type WhiteBoxConfig struct {
	// Canaries is the number of Dirac canaries m; each is present (a
	// subject of the audit's run) with probability ½ (default 4000).
	Canaries int `yaml:"canaries"`
	// Boost is a canary's gradient norm before clipping, in units of C:
	// correct clipping scales it to C (default 10).
	Boost      float64 `yaml:"boost"`
	Confidence float64 `yaml:"confidence"` // of the ε lower bound (default 0.95)
	// FalseAlarm is the probability that the correct code fails any
	// check (default 1e-3, split over the checks: Bonferroni).
	FalseAlarm float64 `yaml:"false_alarm"`

	coin rand.Source // the canaries' coins; nil: the secure source. Tests only.
}

// DefaultWhiteBoxConfig returns the defaults above.
func DefaultWhiteBoxConfig() WhiteBoxConfig {
	return WhiteBoxConfig{Canaries: 4000, Boost: 10, Confidence: 0.95, FalseAlarm: 1e-3}
}

// Validate checks the settings.
func (c WhiteBoxConfig) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: white-box audit: %s", ErrConfig, fmt.Sprintf(f, a...))
	}
	switch {
	case c.Canaries < 20 || c.Canaries > 1_000_000:
		return bad("canaries %d: want 20..1000000", c.Canaries)
	case !(c.Boost > 1) || math.IsInf(c.Boost, 0):
		return bad("boost %v: want > 1", c.Boost)
	case !(c.Confidence > 0.5 && c.Confidence < 1):
		return bad("confidence %v: want (0.5, 1)", c.Confidence)
	case !(c.FalseAlarm > 0 && c.FalseAlarm < 0.5):
		return bad("false_alarm %v: want (0, 0.5)", c.FalseAlarm)
	}
	return nil
}

// The checks of the DP-SGD audit, by name.
const (
	CheckNoiseScale   = "noise_scale"
	CheckNoisePerStep = "noise_per_step"
	CheckNoiseLag     = "noise_correlation_across_steps"
	CheckGaussian     = "noise_gaussian"
	CheckPresence     = "noise_independent_of_canary"
	CheckSamplingRate = "sampling_rate"
	CheckSensitivity  = "sensitivity"
	CheckUntouched    = "canary_coordinates_untouched"
)

// gaussianSample caps the noise values kept for the Gaussianity test.
const gaussianSample = 1 << 20

// AuditWhiteBox runs the white-box audit of DP-SGD on the real trainer
// (Fit) with the production settings cfg and plan. Its training run reads
// the private data and its outputs are steward-only; its spend must have
// been recorded like a training run's.
//
// Canaries: m new catalog items, one per canary, that no real subject
// touches, and for each a canary subject, present in the data with
// probability ½ (a secure coin the trainer never sees), that interacts
// with its own item only. Present canaries go through Fit's Poisson
// sampler like every subject; a hook in the per-subject gradient replaces
// a canary's gradient, before clipping, with Boost·C on its item's bias
// coordinate and nothing else, so correct clipping scales it to exactly C.
//
// Observations, through Fit's step hook, in units of C: the released sum
// on every coordinate of the canary items that only noise reaches (the
// factor coordinates of all of them, the bias coordinates of absent
// canaries; their exact sum must be 0), and on present canaries' bias
// coordinates the exact clipped sum (Δ when the sampler drew the canary,
// else 0: this gives the sampling rate and the sensitivity) and the
// released one. The lower bound on ε is the PLD accountant's ε of the
// Poisson-subsampled Gaussian at the lowest sampling rate and the highest
// noise-to-sensitivity ratio of the confidence region (Clopper–Pearson for
// q, χ² for σ, each at half the miss probability; Δ is observed exactly).
func AuditWhiteBox(ctx context.Context, d *Data, cfg Config, plan Plan, wc WhiteBoxConfig, log *slog.Logger) (*audit.Report, error) {
	if err := wc.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Private() || !(plan.NoiseMultiplier > 0) {
		return nil, fmt.Errorf("%w: the white-box audit needs a private plan", ErrConfig)
	}
	start := time.Now()
	src := wc.coin
	if src == nil {
		src = dp.NewSecureSource()
	}
	coin := rand.New(src)
	ad := &Data{Items: slices.Clone(d.Items), Subjects: slices.Clone(d.Subjects), Rows: slices.Clone(d.Rows)}
	first := int32(len(ad.Items))
	m := wc.Canaries
	present := make([]bool, m)
	nPresent := 0
	for i := range m {
		item := first + int32(i)
		ad.Items = append(ad.Items, fmt.Sprintf("__veil_whitebox_canary_item_%d", i))
		if coin.IntN(2) == 1 {
			present[i] = true
			nPresent++
			ad.Subjects = append(ad.Subjects, fmt.Sprintf("__veil_whitebox_canary_%d", i))
			ad.Rows = append(ad.Rows, []Interaction{{Item: item, Weight: 1}})
		}
	}
	if nPresent == 0 || nPresent == m {
		return nil, fmt.Errorf("%w: white-box audit: all %d canaries fell on one side", ErrConfig, m)
	}
	dim, w := cfg.Dim, cfg.Dim+1
	var noiseIdx, presentIdx []int
	for i := range m {
		base := (int(first) + i) * w
		for p := range dim {
			noiseIdx = append(noiseIdx, base+p)
		}
		if present[i] {
			presentIdx = append(presentIdx, base+dim)
		} else {
			noiseIdx = append(noiseIdx, base+dim)
		}
	}
	boost := wc.Boost * cfg.Clip
	run := cfg
	// The audit's items (the real ones and each canary's own) are its
	// catalog: every canary coordinate is released, whatever the data.
	run.Catalog = ad.Items
	run.gradHook = func(g *gradScratch, rows []Interaction) bool {
		if len(rows) != 1 || rows[0].Item < first {
			return false
		}
		for _, j := range g.items {
			g.pos[j] = 0
		}
		j := rows[0].Item
		g.items, g.coef = append(g.items[:0], j), append(g.coef[:0], boost)
		g.pos[j] = 1
		clear(g.u)
		return true
	}
	o := newWhiteBoxObs(len(noiseIdx), plan.Steps)
	C := cfg.Clip
	run.stepHook = func(step int, exact, released []float64) {
		if cfg.stepHook != nil {
			cfg.stepHook(step, exact, released)
		}
		o.step(step, exact, released, noiseIdx, presentIdx, C)
	}
	if _, _, err := Fit(ctx, ad, run, plan, FitOptions{Log: log}); err != nil {
		return nil, fmt.Errorf("white-box audit: %w", err)
	}
	rep, err := o.report(plan, wc, nPresent)
	if err != nil {
		return nil, err
	}
	rep.Observations = o.n
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// whiteBoxObs accumulates the audit's observations step by step, in units
// of C, without keeping them (but a sample for the Gaussianity test).
type whiteBoxObs struct {
	n, nLag          int64
	ss, sum, lag     float64
	lagA, lagB       float64 // Σ y_{t-1}², Σ y_t² over the lag pairs
	stepSS           []float64
	stepN            []int64
	prev, cur        []float64
	sample           []float64
	touched          int64 // untouched coordinates with a non-zero exact sum
	trials, sampled  int64
	dMin, dMax       float64
	pN               int64
	pSum, pSS, pMean float64 // noise on present canaries' coordinates
	steps            int
	// dims and clip are those of the noised vector (every coordinate of
	// the step's sum, not only those observed): the noise scale
	// dp.GaussianParallel draws depends on them.
	dims int
	clip float64
}

func newWhiteBoxObs(n, steps int) *whiteBoxObs {
	return &whiteBoxObs{stepSS: make([]float64, steps), stepN: make([]int64, steps), prev: make([]float64, n), cur: make([]float64, n),
		dMin: math.Inf(1), dMax: math.Inf(-1)}
}

func (o *whiteBoxObs) step(step int, exact, released []float64, noiseIdx, presentIdx []int, C float64) {
	for k, i := range noiseIdx {
		if exact[i] != 0 {
			o.touched++
		}
		y := released[i] / C
		o.cur[k] = y
		o.ss += y * y
		o.sum += y
		o.stepSS[step] += y * y
		if len(o.sample) < gaussianSample {
			o.sample = append(o.sample, y)
		}
		if o.steps > 0 {
			x := o.prev[k]
			o.lag += x * y
			o.lagA += x * x
			o.lagB += y * y
		}
	}
	if o.steps > 0 {
		o.nLag += int64(len(noiseIdx))
	}
	o.n += int64(len(noiseIdx))
	o.stepN[step] += int64(len(noiseIdx))
	o.prev, o.cur = o.cur, o.prev
	for _, i := range presentIdx {
		e := exact[i] / C
		o.trials++
		if e != 0 {
			o.sampled++
			o.dMin, o.dMax = math.Min(o.dMin, e), math.Max(o.dMax, e)
		}
		z := released[i]/C - e
		o.pN++
		o.pSum += z
		o.pSS += z * z
	}
	o.steps++
	o.dims, o.clip = len(released), C
}

func (o *whiteBoxObs) report(plan Plan, wc WhiteBoxConfig, nPresent int) (*audit.Report, error) {
	chk := audit.NewChecks(wc.FalseAlarm, 8)
	// The two-sided scale checks expect the noise dp.GaussianParallel
	// draws: the plan's σC raised by the lattice rounding (dp.NoiseScale),
	// 0.1-1% of variance at 1e5-1e6 coordinates, which they would flag
	// against σ. The privacy claim rests on σ, the noise over the
	// sensitivity, which the raised scale keeps for the rounded
	// sensitivity; the bound below uses the observed scale.
	sPlan := dp.NoiseScale(plan.NoiseMultiplier*o.clip, o.clip, o.dims) / o.clip
	nf := float64(o.n)
	// The noise scale, pooled over steps and coordinates (known mean 0).
	sHat := math.Sqrt(o.ss / nf)
	chk.Add(CheckNoiseScale, audit.ChiSquareP(o.ss/(sPlan*sPlan), nf),
		"noise multiplier %.4g, plan %.4g (%d noise coordinates)", sHat, sPlan, o.n)
	// Every step on its own: noise carried over from earlier steps grows
	// the later steps' variance. Bonferroni over the steps.
	worst, worstStep, worstRatio := 1.0, 0, 1.0
	for t, ss := range o.stepSS {
		p := audit.ChiSquareP(ss/(sPlan*sPlan), float64(o.stepN[t])) * float64(len(o.stepSS))
		if p < worst {
			worst, worstStep, worstRatio = p, t, math.Sqrt(ss/float64(o.stepN[t]))/sPlan
		}
	}
	chk.Add(CheckNoisePerStep, math.Min(1, worst), "worst step %d: noise %.4g× plan (noise accumulating across steps?)", worstStep+1, worstRatio)
	// Successive steps' noise must be uncorrelated: r√n is about N(0, 1).
	r, p := 0.0, 1.0
	if o.nLag > 0 {
		r = o.lag / math.Sqrt(o.lagA*o.lagB)
		p = audit.TwoSided(r * math.Sqrt(float64(o.nLag)))
	}
	chk.Add(CheckNoiseLag, p, "correlation of successive steps' noise %.4g (noise carried over?)", r)
	z := make([]float64, len(o.sample))
	for i, v := range o.sample {
		z[i] = v / sHat
	}
	chk.Add(CheckGaussian, audit.GaussianFit(z, 32), "χ² fit of %d noise values to N(0, σ̂²), 32 bins; mean %.3g σ̂", len(z), o.sum/nf/sHat)
	// The noise where a canary is present must be the noise where none is.
	pVar := o.pSS / float64(o.pN)
	zMean := (o.pSum / float64(o.pN)) / (sHat / math.Sqrt(float64(o.pN)))
	zVar := (pVar - sHat*sHat) / (sHat * sHat * math.Sqrt(2/float64(o.pN)+2/nf))
	chk.Add(CheckPresence, math.Min(1, 2*math.Min(audit.TwoSided(zMean), audit.TwoSided(zVar))),
		"noise on present canaries: mean %.3g σ̂, variance %.4g× absent", zMean/math.Sqrt(float64(o.pN)), pVar/(sHat*sHat))
	qHat := float64(o.sampled) / float64(o.trials)
	sd := math.Sqrt(plan.SamplingRate * (1 - plan.SamplingRate) * float64(o.trials))
	chk.Add(CheckSamplingRate, audit.TwoSided((float64(o.sampled)-plan.SamplingRate*float64(o.trials))/sd),
		"canaries drawn %d of %d canary-steps: q̂ %.4g, plan %.4g", o.sampled, o.trials, qHat, plan.SamplingRate)
	const tol = 1e-9
	chk.Exact(CheckSensitivity, o.sampled > 0 && o.dMax <= 1+tol,
		"a drawn canary's clipped contribution is %.4g..%.4g C, plan C (clipping skipped?)", o.dMin, o.dMax)
	chk.Exact(CheckUntouched, o.touched == 0, "%d exact sums on coordinates no subject touches are not 0", o.touched)

	// The bound: half the miss probability to σ, half to q.
	miss := (1 - wc.Confidence) / 2
	sLo, sHi := audit.ScaleInterval(o.ss, nf, miss)
	qLo, qHi := audit.BinomialInterval(o.sampled, o.trials, miss)
	dLo := o.dMin
	if o.sampled == 0 {
		dLo = 0
	}
	rep := &audit.Report{
		Mechanism: "DP-SGD (Poisson-subsampled Gaussian)",
		Method:    fmt.Sprintf("white-box Dirac gradient canaries (%d, %d present); ε of the least private parameters in the %.0f%% confidence region, PLD accountant", wc.Canaries, nPresent, 100*wc.Confidence),
		Runs:      1, Releases: o.steps,
		Estimates: []audit.Estimate{
			{Name: "noise_multiplier", Value: sHat, Lo: sLo, Hi: sHi, Plan: sPlan},
			{Name: "sampling_rate", Value: qHat, Lo: qLo, Hi: qHi, Plan: plan.SamplingRate},
			{Name: "sensitivity_over_clip", Value: o.dMax, Lo: dLo, Hi: o.dMax, Plan: 1},
		},
		Delta: plan.Delta, Confidence: wc.Confidence, FalseAlarm: wc.FalseAlarm,
		Checks: chk.List(),
	}
	// The audit observes the DP-SGD steps: its bound is compared with the
	// ε the accountant proves for those steps alone at the run's δ (the
	// plan's ε also pays for the item-count histogram).
	proven, err := accountant.Spent(plan.Accountant, plan.Delta, plan.SGDEvent())
	if err != nil {
		return nil, fmt.Errorf("white-box audit: the proven ε: %w", err)
	}
	rep.ProvenEpsilon = proven.Epsilon
	eps, err := audit.SubsampledGaussianBound(qLo, sHi/dLo, o.steps, plan.Delta) // the releases the auditor saw
	if err != nil {
		return nil, fmt.Errorf("white-box audit: the bound: %w", err)
	}
	rep.EpsilonLowerBound = eps
	return rep, nil
}

// UnmarshalYAML fills what the YAML leaves out from DefaultWhiteBoxConfig.
func (c *WhiteBoxConfig) UnmarshalYAML(unmarshal func(any) error) error {
	type plain WhiteBoxConfig
	p := plain(DefaultWhiteBoxConfig())
	if err := unmarshal(&p); err != nil {
		return err
	}
	*c = WhiteBoxConfig(p)
	return nil
}
