package audit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/veil-privacy/veil/privacy/accountant"
)

// White-box audits (Nasr et al. 2023, "Tight Auditing of Differentially
// Private Machine Learning") see every release of a mechanism, as the
// accountant's threat model does, together with the exact value the noise
// was added to. They estimate the parameters the accountant assumes (the
// noise scale, the sampling rate, the sensitivity a canary realizes) with
// confidence intervals, check that the noise is what the accountant
// assumes (Gaussian, fresh at every release, independent of the data), and
// turn the least private parameters of the confidence region into a lower
// bound on ε with the accountant itself.
//
// What makes the bound sound: the parametric assumption that each release
// is the mechanism the accountant models (Poisson-subsampled Gaussian, or
// the discrete Gaussian) with unknown parameters. The checks test that
// assumption where it can fail (Gaussianity, no correlation across
// releases, no growth with the release, the same noise whether or not the
// canary is there). Under it the canary, whose contribution is the same
// vector of norm Δ at every release, realizes exactly the accountant's
// dominating pair for those parameters, so the ε of the pair is a lower
// bound on the ε of the code; ε grows with q and Δ/σ, so the least private
// corner of the region bounds it at the stated confidence. The PLD
// accountant's discretization is pessimistic by less than one interval per
// composed release; the bound subtracts that.

// ErrFault reports a mechanism whose released noise, sampling or
// sensitivity is inconsistent with its privacy plan beyond the audit's
// confidence intervals: the code does not do what the accountant assumes.
var ErrFault = errors.New("white-box privacy audit: the mechanism does not match its privacy plan")

// Estimate is one estimated mechanism parameter with its confidence
// interval at the report's confidence, and the value its plan claims.
type Estimate struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Plan  float64 `json:"plan"`
}

// Check is one test of the plan against the observations. Failed when the
// p-value is below Alpha (the report's false-alarm rate over its number of
// checks: Bonferroni), or, for exact checks (PValue 0 or 1), when the
// observation contradicts the plan.
type Check struct {
	Name   string  `json:"name"`
	PValue float64 `json:"p_value"`
	Alpha  float64 `json:"alpha"`
	Failed bool    `json:"failed"`
	Detail string  `json:"detail"`
}

// Report is the outcome of a white-box audit of one mechanism.
type Report struct {
	Mechanism string `json:"mechanism"`
	Method    string `json:"method"`
	Runs      int    `json:"runs"`
	// Releases is the number of composed releases the bound is computed
	// for (DP-SGD steps, k-means iterations, 1 for a histogram of counts).
	Releases     int        `json:"releases"`
	Observations int64      `json:"noise_observations"`
	Estimates    []Estimate `json:"estimates"`
	// EpsilonLowerBound: with probability Confidence (under the parametric
	// assumption) the code is not (ε', Delta)-DP for any ε' below it.
	EpsilonLowerBound float64 `json:"epsilon_lower_bound"`
	ProvenEpsilon     float64 `json:"proven_epsilon"`
	Delta             float64 `json:"delta"`
	Confidence        float64 `json:"confidence"`
	FalseAlarm        float64 `json:"false_alarm_rate"` // of all checks together
	Checks            []Check `json:"checks"`
	Seconds           float64 `json:"seconds"`
}

// Tightness is the lower bound over the proven ε.
func (r *Report) Tightness() float64 { return r.EpsilonLowerBound / r.ProvenEpsilon }

// Err returns nil when every check passed, else an error wrapping ErrFault
// that names the mechanism and every failed check.
func (r *Report) Err() error {
	var bad []string
	for _, c := range r.Checks {
		if c.Failed {
			bad = append(bad, c.Name+": "+c.Detail)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrFault, r.Mechanism, strings.Join(bad, "; "))
}

// Failed reports whether the named check failed.
func (r *Report) Failed(name string) bool {
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.Name == name })
	return i >= 0 && r.Checks[i].Failed
}

// Checks collects checks with one false-alarm budget split evenly.
type Checks struct {
	alpha float64
	list  []Check
}

// NewChecks returns a collection of n checks whose false alarms together
// have probability at most falseAlarm (Bonferroni).
func NewChecks(falseAlarm float64, n int) *Checks {
	return &Checks{alpha: falseAlarm / float64(n)}
}

// Alpha is the false-alarm rate of one check.
func (c *Checks) Alpha() float64 { return c.alpha }

// Add records a statistical check with its p-value.
func (c *Checks) Add(name string, p float64, detail string, args ...any) {
	c.list = append(c.list, Check{Name: name, PValue: p, Alpha: c.alpha, Failed: !(p >= c.alpha), Detail: fmt.Sprintf(detail, args...)})
}

// Exact records a check without sampling error: failed when ok is false.
func (c *Checks) Exact(name string, ok bool, detail string, args ...any) {
	p := 1.0
	if !ok {
		p = 0
	}
	c.list = append(c.list, Check{Name: name, PValue: p, Alpha: c.alpha, Failed: !ok, Detail: fmt.Sprintf(detail, args...)})
}

// List returns the checks.
func (c *Checks) List() []Check { return c.list }

// TwoSided is the two-sided p-value of a standard normal z.
func TwoSided(z float64) float64 { return math.Erfc(math.Abs(z) / math.Sqrt2) }

// ZQuantile is the p quantile of the standard normal.
func ZQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// ChiSquareP is the two-sided p-value of a sum of n squared standard
// normals equal to x.
func ChiSquareP(x float64, n float64) float64 {
	c := distuv.ChiSquared{K: n}.CDF(x)
	return math.Min(1, 2*math.Min(c, 1-c))
}

// ScaleInterval is the confidence interval, each side at level alpha, of
// the standard deviation s of n independent N(0, s²) values whose squares
// sum to ss: ss/χ²(n) is the pivot.
func ScaleInterval(ss float64, n float64, alpha float64) (lo, hi float64) {
	d := distuv.ChiSquared{K: n}
	return math.Sqrt(ss / d.Quantile(1-alpha)), math.Sqrt(ss / d.Quantile(alpha))
}

// BinomialInterval is the Clopper–Pearson interval, each side at level
// alpha, of the success probability of k successes in n trials.
func BinomialInterval(k, n int64, alpha float64) (lo, hi float64) {
	if k > 0 {
		lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(alpha)
	}
	hi = 1
	if k < n {
		hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - alpha)
	}
	return lo, hi
}

// GaussianFit is the chi-square goodness-of-fit p-value of values
// (already divided by their estimated scale) against N(0, 1), over bins
// equiprobable bins (bins-1 degrees of freedom: the conservative choice
// when the scale was estimated from the data).
func GaussianFit(z []float64, bins int) float64 {
	edges := make([]float64, bins-1)
	for i := range edges {
		edges[i] = ZQuantile(float64(i+1) / float64(bins))
	}
	counts := make([]float64, bins)
	for _, v := range z {
		i, _ := slices.BinarySearch(edges, v)
		counts[i]++
	}
	e := float64(len(z)) / float64(bins)
	x := 0.0
	for _, c := range counts {
		x += (c - e) * (c - e) / e
	}
	return 1 - distuv.ChiSquared{K: float64(bins - 1)}.CDF(x)
}

// SubsampledGaussianBound is the ε at delta of releases compositions of the
// Poisson-subsampled Gaussian with sampling rate q and noise multiplier
// (noise standard deviation over sensitivity) z, under veil's PLD
// accountant, less the accountant's pessimism (one discretization interval
// per release; the truncated tails' 1e-15 per release is taken out of
// delta): a lower bound on the true ε of those parameters.
func SubsampledGaussianBound(q, z float64, releases int, delta float64) (float64, error) {
	if !(z > 0) || math.IsInf(z, 0) {
		return math.Inf(1), nil
	}
	q = math.Min(1, q)
	if !(q > 0) {
		return 0, nil
	}
	return pldBound(accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: q, NoiseMultiplier: z, Count: releases}, releases, delta)
}

// DiscreteGaussianBound is SubsampledGaussianBound for one release of the
// discrete Gaussian with scale sigma on values of sensitivity 1.
func DiscreteGaussianBound(sigma, delta float64) (float64, error) {
	return pldBound(accountant.Event{Mechanism: accountant.DiscreteGaussian, Sigma: sigma, Sensitivity: 1, Count: 1}, 1, delta)
}

func pldBound(e accountant.Event, releases int, delta float64) (float64, error) {
	a := accountant.NewPLD()
	if err := a.Compose(e); err != nil {
		return 0, err
	}
	r, err := a.Epsilon(delta - 2e-15*float64(releases))
	if err != nil {
		return 0, err
	}
	return math.Max(0, r.Epsilon-a.Interval*float64(releases)), nil
}
