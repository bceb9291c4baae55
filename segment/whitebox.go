package segment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// WhiteBoxConfig sets up the white-box audit of DP k-means.
type WhiteBoxConfig struct {
	Runs       int     `yaml:"runs"`        // DP k-means runs with the canary (default 300)
	Confidence float64 `yaml:"confidence"`  // of the ε lower bound (default 0.95)
	FalseAlarm float64 `yaml:"false_alarm"` // of all checks together (default 1e-3, Bonferroni)

	noise      rand.Source // nil: the secure source. Tests only.
	noiseScale float64     // > 0: a deliberately wrong noise scale, for tests only
	sigma      float64     // > 0: the plan's σ, calibrated beforehand (tests only: calibration is slow)
}

// DefaultWhiteBoxConfig returns the defaults above.
func DefaultWhiteBoxConfig() WhiteBoxConfig {
	return WhiteBoxConfig{Runs: 300, Confidence: 0.95, FalseAlarm: 1e-3}
}

// The checks of the DP k-means audit, by name.
const (
	CheckNoiseScale   = "noise_scale"
	CheckNoisePerIter = "noise_per_iteration"
	CheckNoiseLag     = "noise_correlation_across_iterations"
	CheckGaussian     = "noise_gaussian"
	CheckSensitivity  = "sensitivity"
)

// AuditDPKMeans runs the white-box audit of DP k-means (FitDP) with the
// plan of cfg on the subjects' features x (rows in [0, 1]^D, before
// clipping), k clusters. The audit's runs read private data; their
// outputs are steward-only.
//
// One canary row of norm 10R (every coordinate 10R/√D) joins the data and
// goes through the real clipping (kmeans.ClipRows) and the real FitDP, Runs
// times; a hook in FitDP observes each iteration's exact and released sums
// and counts. The noise (released − exact) on sums/R and on counts must be
// N(0, σ²), fresh at every iteration; the canary's contribution,
// (Σ_clusters sums − Σ_rows x)/R and Σ counts − N, must have norm at most
// √2 (the plan's sensitivity: one cluster's sum by a vector of norm R and
// its count by 1). The lower bound is the PLD accountant's ε of the
// Gaussian mechanism (sampling rate 1) composed over the iterations at the
// highest σ and lowest Δ of the confidence region.
func AuditDPKMeans(ctx context.Context, x *kmeans.Matrix, k int, cfg kmeans.DPConfig, wc WhiteBoxConfig, seed uint64) (*audit.Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sigma, ev, spent, err := wc.sigma, accountant.Event{}, accountant.Result{}, error(nil)
	if sigma > 0 {
		ev = accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: sigma / math.Sqrt2, Count: cfg.Iterations}
		spent, err = accountant.Spent(cfg.Accountant, cfg.Delta, ev)
	} else {
		sigma, ev, spent, err = cfg.Plan()
	}
	if err != nil {
		return nil, err
	}
	if wc.Runs < 1 || !(wc.Confidence > 0.5 && wc.Confidence < 1) || !(wc.FalseAlarm > 0 && wc.FalseAlarm < 0.5) {
		return nil, fmt.Errorf("%w: white-box audit: runs %d, confidence %v, false alarm %v", ErrConfig, wc.Runs, wc.Confidence, wc.FalseAlarm)
	}
	start := time.Now()
	r := cfg.ClipRadius
	xc := kmeans.NewMatrix(x.N+1, x.D)
	copy(xc.Data, x.Data)
	for j := range x.D {
		xc.Row(x.N)[j] = float32(10 * r / math.Sqrt(float64(x.D)))
	}
	kmeans.ClipRows(xc, r)
	// The real subjects' total, as FitDP sums it (float64 of the float32
	// features), to take out of the clusters' total.
	rowSum := make([]float64, x.D)
	for i := range x.N {
		for j, v := range xc.Row(i) {
			rowSum[j] += float64(v)
		}
	}
	run := cfg
	noisy := sigma
	if wc.noiseScale > 0 {
		noisy *= wc.noiseScale
	}
	o := &kmObs{stepSS: make([]float64, cfg.Iterations), dMin: math.Inf(1), dMax: math.Inf(-1)}
	canary := make([]float64, x.D)
	run.Observe = func(iter int, sums, counts, nSums, nCounts []float64) {
		clear(canary)
		var n float64
		// Every cluster the iteration releases (FitDP releases more
		// than k while it over-clusters).
		for c := range counts {
			for j := range x.D {
				canary[j] += sums[c*x.D+j]
			}
			n += counts[c]
		}
		d2 := (n - float64(x.N)) * (n - float64(x.N))
		for j := range x.D {
			v := (canary[j] - rowSum[j]) / r
			d2 += v * v
		}
		o.dMin, o.dMax = math.Min(o.dMin, math.Sqrt(d2)), math.Max(o.dMax, math.Sqrt(d2))
		if iter == 0 {
			o.prev = o.prev[:0]
		}
		o.cur = o.cur[:0]
		for i, v := range nSums {
			o.cur = append(o.cur, (v-sums[i])/r)
		}
		vs := dp.NoiseScale(sigma*r, r, len(nSums)) / r
		vc := dp.NoiseScale(sigma, 1, len(nCounts))
		o.ev += float64(len(nSums))*vs*vs + float64(len(nCounts))*vc*vc
		for i, v := range nCounts {
			o.cur = append(o.cur, v-counts[i])
		}
		for i, y := range o.cur {
			o.ss += y * y
			o.stepSS[iter] += y * y
			if len(o.sample) < gaussianSample {
				o.sample = append(o.sample, y)
			}
			if len(o.prev) > 0 {
				p := o.prev[i]
				o.lag += p * y
				o.lagA += p * p
				o.lagB += y * y
				o.nLag++
			}
		}
		o.n += int64(len(o.cur))
		o.prev, o.cur = o.cur, o.prev
	}
	for i := range wc.Runs {
		var src rand.Source = dp.NewSecureSource()
		if wc.noise != nil {
			src = wc.noise
		}
		if _, err := kmeans.FitDP(ctx, xc, k, run, noisy, src, seed+uint64(i)); err != nil {
			return nil, fmt.Errorf("white-box audit of DP k-means: %w", err)
		}
	}
	chk := audit.NewChecks(wc.FalseAlarm, 5)
	nf := float64(o.n)
	sHat := math.Sqrt(o.ss / nf)
	// The two-sided scale checks expect the noise dp.Gaussian draws: σ
	// raised by the lattice rounding (dp.NoiseScale), by a little more on
	// the sums (m·D values) than on the counts (m), which they would flag
	// against σ itself on wide features. The privacy claim rests on σ
	// over the sensitivity, which the raised scale keeps for the rounded
	// sensitivity; the bound below uses the observed scale. Every
	// iteration releases the same shape, so one pooled scale serves the
	// iterations too (the two scales differ by far less than the tests
	// resolve, so the pooled sum of squares is χ² to that precision).
	sPlan := math.Sqrt(o.ev / nf)
	chk.Add(CheckNoiseScale, audit.ChiSquareP(o.ss/(sPlan*sPlan), nf), "noise σ̂ %.4g, plan %.4g (%d noise values)", sHat, sPlan, o.n)
	worst, worstIter, worstRatio := 1.0, 0, 1.0
	per := nf / float64(cfg.Iterations)
	for t, ss := range o.stepSS {
		p := audit.ChiSquareP(ss/(sPlan*sPlan), per) * float64(cfg.Iterations)
		if p < worst {
			worst, worstIter, worstRatio = p, t, math.Sqrt(ss/per)/sPlan
		}
	}
	chk.Add(CheckNoisePerIter, math.Min(1, worst), "worst iteration %d: noise %.4g× plan (noise accumulating?)", worstIter+1, worstRatio)
	rho, p := 0.0, 1.0
	if o.nLag > 0 {
		rho = o.lag / math.Sqrt(o.lagA*o.lagB)
		p = audit.TwoSided(rho * math.Sqrt(float64(o.nLag)))
	}
	chk.Add(CheckNoiseLag, p, "correlation of successive iterations' noise %.4g", rho)
	z := make([]float64, len(o.sample))
	for i, v := range o.sample {
		z[i] = v / sHat
	}
	chk.Add(CheckGaussian, audit.GaussianFit(z, 32), "χ² fit of %d noise values to N(0, σ̂²), 32 bins", len(z))
	// float32 features summed in float64: the canary's contribution is
	// exact to far better than 1e-6.
	chk.Exact(CheckSensitivity, o.dMax <= math.Sqrt2*(1+1e-6), "the canary's contribution has norm %.6g..%.6g, plan √2 (clipping skipped?)", o.dMin, o.dMax)

	miss := (1 - wc.Confidence) / 2
	sLo, sHi := audit.ScaleInterval(o.ss, nf, miss)
	eps, err := audit.SubsampledGaussianBound(1, sHi/o.dMin, cfg.Iterations, cfg.Delta)
	if err != nil {
		return nil, err
	}
	return &audit.Report{
		Mechanism: "DP k-means (Gaussian noisy sums and counts)",
		Method:    fmt.Sprintf("white-box: one canary of norm 10R through the clipping and FitDP, %d runs; ε of the least private parameters in the %.0f%% confidence region, PLD accountant", wc.Runs, 100*wc.Confidence),
		Runs:      wc.Runs, Releases: cfg.Iterations, Observations: o.n,
		Estimates: []audit.Estimate{
			{Name: "noise_sigma", Value: sHat, Lo: sLo, Hi: sHi, Plan: sPlan},
			{Name: "sensitivity", Value: o.dMax, Lo: o.dMin, Hi: o.dMax, Plan: math.Sqrt2},
			{Name: "noise_multiplier", Value: sHat / o.dMax, Lo: sLo / o.dMax, Hi: sHi / o.dMin, Plan: ev.NoiseMultiplier},
		},
		EpsilonLowerBound: eps, ProvenEpsilon: spent.Epsilon, Delta: cfg.Delta, Confidence: wc.Confidence, FalseAlarm: wc.FalseAlarm,
		Checks: chk.List(), Seconds: time.Since(start).Seconds(),
	}, nil
}

// gaussianSample caps the noise values kept for the Gaussianity test.
const gaussianSample = 1 << 20

type kmObs struct {
	n, nLag    int64
	ss, lag    float64
	lagA, lagB float64
	stepSS     []float64
	prev, cur  []float64
	sample     []float64
	dMin, dMax float64
	// ev is the variance the noise values' squares sum to in expectation:
	// each release's values at the scale dp.Gaussian draws for its length.
	ev float64
}

// AuditReleases runs the white-box audits of the DP releases a segment
// job's configuration plans: DP k-means (when it has a privacy section)
// and the discrete Gaussian of its noisy cohort sizes (draws draws). The
// mechanisms' noise, clipping and accounting do not depend on the
// subjects' values, so the audit runs them on public synthetic rows
// (subjects rows uniform in [0, 1]^dim, drawn from seed): it reads no
// private data and spends no budget. delta is the counts' δ when the job
// has no privacy section.
func AuditReleases(ctx context.Context, cfg Config, wc WhiteBoxConfig, subjects, dim, draws int, delta float64, seed uint64) ([]*audit.Report, error) {
	var reps []*audit.Report
	if p := cfg.Privacy; p != nil {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		k, err := strconv.Atoi(cfg.KMeans.K)
		if err != nil {
			return nil, fmt.Errorf("%w: the white-box audit needs a fixed k, not %q", ErrConfig, cfg.KMeans.K)
		}
		r := rand.New(rand.NewPCG(seed, 0xa0d))
		x := kmeans.NewMatrix(subjects, dim)
		for i := range x.Data {
			x.Data[i] = float32(r.Float64())
		}
		rep, err := AuditDPKMeans(ctx, x, k, *p, wc, seed)
		if err != nil {
			return nil, err
		}
		reps = append(reps, rep)
		delta = p.Delta
	}
	if cfg.NoisySizes > 0 {
		var src rand.Source = dp.NewSecureSource()
		if wc.noise != nil {
			src = wc.noise
		}
		r := rand.New(src)
		rep, err := audit.DiscreteGaussian(func() (int64, error) { return dp.DiscreteGaussian(r, cfg.NoisySizes) }, cfg.NoisySizes, draws, delta, wc.Confidence, wc.FalseAlarm)
		if err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("%w: the job releases nothing under DP (no privacy section, no noisy_sizes_sigma)", ErrConfig)
	}
	return reps, nil
}
