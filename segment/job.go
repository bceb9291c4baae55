package segment

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// Config is a segmentation job (configs/segment.yaml).
type Config struct {
	privacy.JobTables `yaml:",inline"`
	Output            string `yaml:"output"` // URL prefix of the outputs
	// Steward is the URL of the steward reports (exact counts, the
	// contributors filter); empty: the prefix _steward next to the output
	// (release.StewardURL). Pipelines set STATE/steward.
	Steward string `yaml:"steward"`
	// StewardKeyFile is the file of the steward key that keys the
	// contributors filter; empty: $VEIL_STEWARD_KEY_FILE or
	// $VEIL_STEWARD_KEY (lineage.LoadStewardKey), else a random key of the
	// filter's own, stored beside it in the steward report.
	StewardKeyFile string        `yaml:"steward_key_file"`
	Features       FeatureConfig `yaml:"features"`
	// Catalog is the URL of the shop's public product catalog (the
	// catalog contract). DP runs name each category feature by the
	// catalog's categories that fall in its hash bucket; without a catalog
	// by its number (the most common category of a bucket is a count of
	// the data). Runs without DP name buckets from the data.
	Catalog string       `yaml:"catalog"`
	KMeans  KMeansConfig `yaml:"kmeans"`
	Floor   Floor        `yaml:"cohort_floor"`
	// NoisySizes releases each cohort's size with discrete Gaussian noise
	// of this scale; 0 turns it off. With Privacy it is a DP release,
	// charged to Budget. Without Privacy the centres, profiles and
	// assignments are exact, so noisy sizes protect no one: the run says it
	// is not differentially private and charges nothing; the exact sizes
	// are still kept out of the release (they are in the steward report).
	NoisySizes float64       `yaml:"noisy_sizes_sigma"`
	Budget     *BudgetConfig `yaml:"budget"`
	// Privacy turns on DP k-means: centres are released under (ε, δ)-DP,
	// features are scaled with data-independent constants, the floor and the
	// profiles use only released quantities. It needs NoisySizes and Budget.
	Privacy *kmeans.DPConfig `yaml:"privacy"`
	Workers int              `yaml:"workers"`
	// ContributorsFPR is the false-positive rate of the Bloom filter of
	// contributing subjects written with each output (contributors.bloom),
	// which traces erasure requests to the outputs they affect.
	ContributorsFPR float64 `yaml:"contributors_fpr"`
	// Monitoring sets the thresholds of the composition (bias) and drift
	// reports of non-DP runs.
	Monitoring MonitorConfig `yaml:"monitoring"`
	// WhiteBoxAudit, in a DP run, runs the white-box audits of its DP
	// releases (DP k-means and the noisy sizes' discrete Gaussian, on
	// public synthetic rows: nothing private is read, nothing spent)
	// before any data is read; a mechanism that does not match its plan
	// fails the run, and the datasheet states the audits' lower bounds.
	WhiteBoxAudit *WhiteBoxConfig `yaml:"white_box_audit"`
	// RunID names the run (outputs, budget spend); empty: a new UUIDv7.
	// A scheduler that retries a run passes the same id, so that the budget
	// ledger does not count the retry's spend twice.
	RunID string `yaml:"-"`
	// Charged, when set, is the ledger record in which the pipeline run
	// already spent this job's releases (with those of its other steps,
	// before any step read data): the job spends nothing itself.
	Charged *budget.Record `yaml:"-" json:"-"`

	// noise, in tests only, gives each draw of the job's noise a
	// deterministic stream; nil (always, outside tests): the secure source.
	noise func() rand.Source
}

// noiseSource returns a fresh source of the job's DP noise.
func (c *Config) noiseSource() rand.Source {
	if c.noise != nil {
		return c.noise()
	}
	return dp.NewSecureSource()
}

// KMeansConfig is the k-means part of a job.
type KMeansConfig struct {
	K       string  `yaml:"k"` // a number, or "auto"
	KMin    int     `yaml:"k_min"`
	KMax    int     `yaml:"k_max"`
	NInit   int     `yaml:"n_init"`
	MaxIter int     `yaml:"max_iter"`
	Tol     float64 `yaml:"tol"`
	Seed    uint64  `yaml:"seed"`
}

// BudgetConfig names the ledger and the budget that DP releases spend.
type BudgetConfig = budget.Config

// Fingerprint is the SHA-256 of the job's whole configuration (outputs
// included; the run id and the pipeline's record aside): the ledger
// honours a run id again only for the same fingerprint.
func (c Config) Fingerprint() string {
	c.RunID, c.Charged = "", nil
	return budget.Fingerprint(c)
}

// WindowDays returns the days of events the job reads, ending on the
// logical date: the policy's retention for segmentation (the filter's
// window). Its spends charge every budget period the window overlaps.
func (c *Config) WindowDays(ctx context.Context, opt dataset.URLOptions) (int, error) {
	pol, err := privacy.ResolvePolicy(ctx, c.Policy, opt) // the pinned policy, if any
	if err != nil {
		return 0, err
	}
	return pol.RetentionDays([]string{privacy.Segmentation}), nil
}

// Identity returns the ledger identity of the job's events, by the rules
// of its policy (release.Identity): the events table's own, or the
// declared budget.dataset when the policy sets no budgets.
func (c *Config) Identity(ctx context.Context, opt dataset.URLOptions) (string, error) {
	return release.Identity(ctx, c.Events, c.Budget, c.Policy, opt)
}

// DefaultConfig returns the defaults of every optional field.
func DefaultConfig() Config {
	return Config{
		Features: DefaultFeatureConfig(),
		KMeans:   KMeansConfig{K: "8", KMin: 2, KMax: 12, NInit: 4, MaxIter: 100, Tol: 1e-4, Seed: 1},
		Floor:    Floor{MinSize: 100, Small: "merge"},

		ContributorsFPR: 0.01,
		Monitoring:      DefaultMonitorConfig(),
	}
}

// UnmarshalYAML fills what the YAML leaves out from DefaultConfig, also
// inside nested sections, so that a config embedded in a pipeline spec gets
// the same defaults as a job file.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	p := plain(DefaultConfig())
	if err := unmarshal(&p); err != nil {
		return err
	}
	*c = Config(p)
	return nil
}

// LoadConfig reads a job file, strictly.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := DefaultConfig()
	if err := strictyaml.Decode(path, data, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate reports whether the job can run.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.Events == "" || c.Output == "" {
		return bad("events and output are required")
	}
	if c.Floor.MinSize < 1 {
		return bad("cohort_floor.min_size %d must be at least 1", c.Floor.MinSize)
	}
	if c.Floor.Small != "merge" && c.Floor.Small != "suppress" {
		return bad("cohort_floor.small %q: want merge or suppress", c.Floor.Small)
	}
	if c.Features.CategoryBuckets < 1 || c.Features.CategoryBuckets > 4096 {
		return bad("features.category_buckets %d must be in [1, 4096]", c.Features.CategoryBuckets)
	}
	if c.Features.MaxEvents < 1 {
		return bad("features.max_events_per_subject %d must be at least 1", c.Features.MaxEvents)
	}
	if c.KMeans.NInit < 0 || c.KMeans.MaxIter < 0 || !(c.KMeans.Tol >= 0) || math.IsInf(c.KMeans.Tol, 0) {
		return bad("kmeans n_init %d, max_iter %d, tol %v must not be negative", c.KMeans.NInit, c.KMeans.MaxIter, c.KMeans.Tol)
	}
	if c.Workers < 0 {
		return bad("workers %d is negative", c.Workers)
	}
	if err := c.JobTables.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.KMeans.K != "auto" {
		k, err := strconv.Atoi(c.KMeans.K)
		if err != nil || k < 1 {
			return bad("kmeans.k %q must be a positive number or auto", c.KMeans.K)
		}
	} else if c.KMeans.KMin < 2 || c.KMeans.KMax < c.KMeans.KMin {
		return bad("kmeans k_min %d and k_max %d: want 2 <= k_min <= k_max", c.KMeans.KMin, c.KMeans.KMax)
	}
	if !(c.ContributorsFPR > 0 && c.ContributorsFPR < 0.5) {
		return bad("contributors_fpr %v must be in (0, 0.5)", c.ContributorsFPR)
	}
	if err := c.Monitoring.Validate(); err != nil {
		return err
	}
	if wc := c.WhiteBoxAudit; wc != nil {
		if c.Privacy == nil {
			return bad("white_box_audit audits DP releases: it needs a privacy section")
		}
		if wc.Runs < 10 || !(wc.Confidence > 0 && wc.Confidence < 1) || !(wc.FalseAlarm > 0 && wc.FalseAlarm < 0.5) {
			return bad("white_box_audit: runs %d (want >= 10), confidence %v (want (0, 1)), false_alarm %v (want (0, 0.5))", wc.Runs, wc.Confidence, wc.FalseAlarm)
		}
	}
	if !(c.NoisySizes >= 0) || math.IsInf(c.NoisySizes, 0) {
		return bad("noisy_sizes_sigma %v must be a finite number, at least 0", c.NoisySizes)
	}
	if c.Privacy != nil {
		if err := c.Privacy.Validate(); err != nil {
			return err
		}
		if c.KMeans.K == "auto" {
			return bad("kmeans.k: auto cannot run with privacy: DP k-means needs a fixed k. k: auto fits k-means for every k in [k_min, k_max] and keeps the best silhouette, computed exactly on the subjects' data: that choice is a release no budget covers, and veil has no DP criterion for k. Set kmeans.k to a number (from the campaign's needs, or chosen with k: auto on public or synthetic data such as veil generate)")
		}
		if c.NoisySizes <= 0 {
			return bad("DP k-means needs noisy_sizes_sigma > 0: the cohort floor and the profiles use noisy sizes")
		}
	}
	// Without a budget of its own a DP job needs a policy file that sets
	// budgets (the built-in policy sets none); the release path checks
	// that the file sets one for its table before anything is read.
	if c.Privacy != nil && (c.Budget == nil || c.Budget.Ledger == "") && c.Policy == "" {
		return bad("DP k-means is a DP release: a budget with a ledger is required, or a policy file that sets the table's budget")
	}
	if c.Budget != nil && (c.Budget.Ledger != "" || c.Budget.Epsilon != 0 || c.Budget.Delta != 0) {
		if err := c.Budget.Policy.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Report is what a segmentation run did.
type Report struct {
	RunID       string `json:"run_id"`
	LogicalDate string `json:"logical_date"`
	Output      string `json:"output"`
	// StewardReport is where the run's steward report was committed
	// (exact counts, diagnostics, the contributors filter).
	StewardReport string `json:"steward_report,omitempty"`
	// NotDP says plainly, in runs without DP k-means, that the release is
	// not differentially private (and why noisy sizes do not make it so).
	NotDP string `json:"not_dp,omitempty"`
	// NoisySizes records the run's configuration: sizes are released with
	// noise (cfg.Privacy != nil || cfg.NoisySizes > 0), so no exact count
	// may appear in the release (Public, the datasheet, the profiles).
	NoisySizes bool `json:"noisy_sizes,omitempty"`
	// The fields below down to Contributors, and each profile's Size, are
	// exact: with noisy sizes they go to the steward report only, and
	// Public leaves them out.
	Filter   privacy.Report `json:"filter,omitzero"`
	Subjects int            `json:"subjects,omitempty"`
	Events   int64          `json:"events_used,omitempty"`
	Bounded  int            `json:"subjects_sampled_down,omitempty"`
	K        int            `json:"k"`
	DP       *DPReport      `json:"dp,omitempty"`
	// WhiteBox are the white-box audits of the run's DP releases
	// (Config.WhiteBoxAudit): public, they ran on synthetic rows.
	WhiteBox    []*audit.Report `json:"white_box_audit,omitempty"`
	Inertia     float64         `json:"inertia,omitempty"`
	Iterations  int             `json:"iterations"`
	Silhouette  float64         `json:"silhouette,omitempty"`
	KScores     map[int]float64 `json:"k_silhouettes,omitempty"`
	Cohorts     int             `json:"cohorts"`
	Suppressed  int             `json:"suppressed_subjects,omitempty"`
	Exported    int             `json:"exported_assignments,omitempty"`
	NotExported map[string]int  `json:"not_exported,omitempty"`
	// Withheld are the cohorts left out of the assignments because fewer
	// of their subjects could be exported than the floor (steward only).
	Withheld []WithheldCohort `json:"withheld_cohorts,omitempty"`
	Spent    *budget.Record   `json:"budget_spent,omitempty"`
	// Contributors describes the Bloom filter of the subjects whose data
	// shaped the output (every subject with features, exported or not).
	Contributors *lineage.Contributors `json:"contributors,omitempty"`
	Profiles     []Profile             `json:"profiles"`
	// Monitoring is the composition and drift report (non-DP runs only:
	// it counts subjects exactly).
	Monitoring *Monitoring `json:"monitoring,omitempty"`
	Seconds    float64     `json:"seconds"`
}

// DPReport is what a DP k-means run released and how well it did.
type DPReport struct {
	// Epsilon is DP k-means' own ε at Delta; the run's charge (the noisy
	// sizes too) is Report.Spent.
	Epsilon    float64 `json:"epsilon"`
	Delta      float64 `json:"delta"`
	Accountant string  `json:"accountant"`
	Sigma      float64 `json:"noise_sigma"`
	Iterations int     `json:"iterations"`
	ClipRadius float64 `json:"clip_radius"`
	Clipped    int     `json:"subjects_clipped,omitempty"` // steward only
	// NormalizedObjective is the k-means objective of the DP centres over
	// that of non-private k-means on the same scaled, clipped data (1 is as
	// good; the non-private run is for this report only).
	NormalizedObjective float64 `json:"normalized_objective,omitempty"` // steward only
}

// Run runs a segmentation job at a logical date.
func Run(ctx context.Context, cfg Config, day time.Time, opt dataset.URLOptions, log *slog.Logger) (*Report, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep, err := run(ctx, cfg, day, opt, log)
	if err == nil {
		log.Info("segmentation run committed", "run_id", rep.RunID, "release", rep.Output, "steward_report", rep.StewardReport)
	}
	return rep, err
}

func run(ctx context.Context, cfg Config, day time.Time, opt dataset.URLOptions, log *slog.Logger) (*Report, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The catalog is public: read before anything is spent, so that a
	// wrong URL costs no budget.
	var categories []string
	if cfg.Catalog != "" && cfg.Privacy != nil {
		var err error
		if categories, err = CatalogCategories(ctx, cfg.Catalog, cfg.JobTables, opt); err != nil {
			return nil, err
		}
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	build := []string{privacy.Segmentation}
	export := []string{privacy.Marketing}
	in, err := cfg.Open(ctx, append(build, export...), opt)
	if err != nil {
		return nil, err
	}
	pol, events := in.Policy, in.Events
	runID := cfg.RunID
	if runID == "" {
		runID = uuid.Must(uuid.NewV7()).String()
	}
	rep := &Report{RunID: runID, LogicalDate: day.Format(time.DateOnly), NotExported: map[string]int{},
		NoisySizes: cfg.Privacy != nil || cfg.NoisySizes > 0}
	if cfg.Privacy == nil {
		rep.NotDP = "not differentially private: k-means centres, profiles and assignments are computed exactly from the data"
		if cfg.NoisySizes > 0 {
			rep.NotDP += "; the cohort sizes carry noise, but next to exact centres that protects no one, so no privacy budget was charged"
		}
	}

	// White-box audits of the DP mechanisms, on public synthetic rows,
	// before anything is spent or read: a broken mechanism stops the run.
	if wc := cfg.WhiteBoxAudit; wc != nil && cfg.Privacy != nil {
		reps, err := AuditReleases(ctx, cfg, *wc, 2000, 8, 100000, cfg.Privacy.Delta, 1)
		if err != nil {
			return nil, err
		}
		for _, r := range reps {
			if err := r.Err(); err != nil {
				return nil, err
			}
			log.Info("white-box audit", "mechanism", r.Mechanism, "proven_epsilon", r.ProvenEpsilon, "epsilon_lower_bound", r.EpsilonLowerBound)
		}
		rep.WhiteBox = reps
	}
	// The events table's footers must hold the contract's columns: a wrong
	// table is an input error found before anything is spent.
	if err := CheckEventsSchema(ctx, events); err != nil {
		return nil, err
	}
	// Plan the DP releases and ask the ledger before reading any data.
	// Without DP k-means nothing is charged (see Config.NoisySizes).
	if cfg.Privacy != nil {
		window, err := cfg.WindowDays(ctx, opt)
		if err != nil {
			return nil, err
		}
		evs, acct, err := cfg.Releases()
		if err != nil {
			return nil, err
		}
		sigma, _, spent, err := cfg.Privacy.Plan()
		if err != nil {
			return nil, err
		}
		rep.DP = &DPReport{Epsilon: spent.Epsilon, Delta: cfg.Privacy.Delta, Accountant: cfg.Privacy.Accountant, Sigma: sigma,
			Iterations: cfg.Privacy.Iterations, ClipRadius: cfg.Privacy.ClipRadius}
		if cfg.Charged != nil {
			rep.Spent = cfg.Charged
		} else {
			rec, _, err := release.Spend(ctx, release.Request{Table: cfg.Events, Budget: cfg.Budget, PolicyFile: cfg.Policy, RunID: runID, Job: "segment",
				LogicalDate: day, WindowDays: window, Accountant: acct, Events: evs, Config: cfg.Fingerprint(), Log: log}, opt)
			if err != nil {
				return nil, err
			}
			rep.Spent = &rec
		}
	}

	filtered, err := newFiltered(ctx, cfg, in, day)
	if err != nil {
		return nil, err
	}
	// The PII guard reads the files the job would read.
	if err := filtered.GuardPII(ctx); err != nil {
		return nil, err
	}
	ix, flt := filtered.Index, filtered.Filter
	feats, err := BuildFeatures(ctx, pol, flt, events, cfg.Features, day, workers)
	if err != nil {
		return nil, err
	}
	rep.Filter = feats.Filter
	rep.Subjects, rep.Events, rep.Bounded = len(feats.Subjects), feats.Events, feats.Bounded
	// Logs are read by whoever reads the scheduler's logs: a run that
	// releases noisy sizes (DP or not) logs no exact count; they are in
	// the steward report.
	if rep.noisy() {
		log.Info("features built; exact counts in the steward report")
	} else {
		log.Info("features built (exact: not a DP run)", "subjects", rep.Subjects, "events", rep.Events, "dims", feats.X.D)
	}

	if cfg.Privacy != nil {
		return runDP(ctx, cfg, pol, feats, categories, ix, build, export, rep, outRefFor(ctx, cfg, opt), start, opt)
	}
	res, err := fitKMeans(ctx, cfg, feats, workers, rep)
	if err != nil {
		return nil, err
	}
	rep.K, rep.Inertia, rep.Iterations = res.Centroids.N, res.Inertia, res.Iterations
	rep.Silhouette = kmeans.Silhouette(feats.X, res.Labels, res.Centroids.N, 2000, cfg.KMeans.Seed)
	cohorts, suppressed, err := ApplyFloor(feats.X, res.Labels, res.Centroids.N, cfg.Floor)
	if err != nil {
		return nil, err
	}
	rep.Cohorts, rep.Suppressed = len(cohorts), len(suppressed)
	rep.Profiles = Profiles(feats, cohorts)
	if cfg.NoisySizes > 0 {
		r := rand.New(cfg.noiseSource())
		for i := range rep.Profiles {
			z, err := dp.DiscreteGaussian(r, cfg.NoisySizes)
			if err != nil {
				return nil, err
			}
			n := max(0, int64(rep.Profiles[i].Size)+z)
			rep.Profiles[i].NoisySize = &n
		}
	}

	// Exports: assignments only for subjects who also allow marketing.
	outRef, err := open.Ref(ctx, cfg.Output, opt)
	if err != nil {
		return nil, err
	}
	return exportRun(ctx, outRef, cfg, pol, feats, cohorts, res, ix, build, export, rep, start, nil, opt)
}

// fitKMeans runs k-means on the features, choosing k by silhouette on a
// sample when asked (the scores go into rep).
func fitKMeans(ctx context.Context, cfg Config, feats *Features, workers int, rep *Report) (*kmeans.Result, error) {
	fit := func(k int) (*kmeans.Result, error) {
		km := kmeans.KMeans{K: k, NInit: cfg.KMeans.NInit, MaxIter: cfg.KMeans.MaxIter, Tol: cfg.KMeans.Tol, Seed: cfg.KMeans.Seed, Workers: workers}
		if feats.X.N > 100000 {
			km.Init = "k-means||"
		}
		return km.Fit(ctx, feats.X)
	}
	if cfg.KMeans.K != "auto" {
		k, _ := strconv.Atoi(cfg.KMeans.K)
		return fit(k)
	}
	var res *kmeans.Result
	rep.KScores = map[int]float64{}
	best := -2.0
	for k := cfg.KMeans.KMin; k <= min(cfg.KMeans.KMax, feats.X.N-1); k++ {
		r, err := fit(k)
		if err != nil {
			return nil, err
		}
		s := kmeans.Silhouette(feats.X, r.Labels, k, 2000, cfg.KMeans.Seed)
		rep.KScores[k] = s
		if s > best {
			best, res = s, r
		}
	}
	if res == nil {
		return nil, fmt.Errorf("%w: too few consented subjects to choose k in [%d, %d]", ErrInput, cfg.KMeans.KMin, cfg.KMeans.KMax)
	}
	return res, nil
}

// exportRun writes a run's exports and datasheet under
// OUTPUT/dt=DATE/run=RUN_ID (a release) and its steward report (exact
// counts, diagnostics, the contributors filter) under
// STEWARD/segment/dt=DATE/run=RUN_ID, and commits them: the steward report
// first, so that no committed release lacks its contributors filter.
func exportRun(ctx context.Context, ref dataset.Ref, cfg Config, pol *privacy.Policy, feats *Features, cohorts []Cohort, res *kmeans.Result,
	ix *privacy.ConsentIndex, build, export []string, rep *Report, start time.Time, meta map[string]string, opt dataset.URLOptions) (*Report, error) {
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	key, err := lineage.LoadStewardKey(cfg.StewardKeyFile, getenv)
	if err != nil {
		return nil, err
	}
	day, _ := time.Parse(time.DateOnly, rep.LogicalDate)
	st, err := release.OpenSteward(ctx, release.StewardURL(cfg.Steward, cfg.Output), opt, "segment", day, rep.RunID, "veil segment")
	if err != nil {
		return nil, err
	}
	rep.StewardReport = st.Location()
	prefix := dataset.Join(ref.Key, "dt="+rep.LogicalDate, "run="+rep.RunID)
	out, err := dataset.NewOutput(ctx, ref.Store, prefix, nil, "veil segment")
	if err != nil {
		st.Abort(ctx)
		return nil, err
	}
	out.SetClass(dataset.ClassRelease)
	rep.Output = out.Location()
	c, err := lineage.WriteContributors(ctx, st.Output(), feats.Subjects, lineage.ContributorsFilter{RunID: rep.RunID, FPR: cfg.ContributorsFPR, Key: key})
	if err == nil {
		rep.Contributors = &c
		err = writeExports(ctx, out, feats, cohorts, res, ix, export, cfg.Floor.MinSize, rep)
	}
	if err == nil && cfg.Privacy == nil {
		err = monitor(ctx, out, ref, cfg, feats, cohorts, rep)
	}
	if err == nil {
		err = out.PutFile(ctx, DatasheetFile, DatasheetOf(rep, cfg, pol, build, export, out.WriteID()), 0)
	}
	rep.Seconds = time.Since(start).Seconds()
	if err == nil {
		err = writeSteward(ctx, st, rep, cfg)
	}
	m := map[string]string{"run_id": rep.RunID, "logical_date": rep.LogicalDate, "job": "segment"}
	maps.Copy(m, meta)
	if err == nil {
		err = st.Commit(ctx, m)
	}
	if err != nil {
		out.Abort(ctx)
		st.Abort(ctx)
		return nil, err
	}
	if _, err := out.Commit(ctx, m); err != nil {
		out.Abort(ctx)
		return nil, err
	}
	return rep, nil
}

// ProfileRow is one row of the profiles export of a run with noisy
// sizes: no exact size.
type ProfileRow struct {
	CohortID    int64  `parquet:"cohort_id"`
	NoisySize   int64  `parquet:"noisy_size"`
	Centroid    string `parquet:"centroid"`     // JSON: feature -> mean in original units
	TopFeatures string `parquet:"top_features"` // JSON list
	Explanation string `parquet:"explanation"`
	Note        string `parquet:"note"`
}

// ExactProfileRow is one row of the profiles export of a run without
// noisy sizes (not DP): the exact size.
type ExactProfileRow struct {
	CohortID    int64  `parquet:"cohort_id"`
	Size        int64  `parquet:"size"`
	Centroid    string `parquet:"centroid"`
	TopFeatures string `parquet:"top_features"`
	Explanation string `parquet:"explanation"`
	Note        string `parquet:"note"`
}

func writeExports(ctx context.Context, out *dataset.Output, f *Features, cohorts []Cohort, res *kmeans.Result, ix *privacy.ConsentIndex, purposes []string, minSize int, rep *Report) error {
	var rows []dataset.CohortAssignment
	for _, c := range cohorts {
		for _, i := range c.Members {
			if r := ix.Decide(f.Subjects[i], purposes); r != privacy.Keep {
				rep.NotExported[r.String()]++
				continue
			}
			rows = append(rows, dataset.CohortAssignment{SubjectID: f.Subjects[i], CohortID: int64(c.ID), Distance: float64(res.Dist[i]), RunID: rep.RunID})
		}
	}
	// The floor on the export itself: the exact number of each cohort's
	// exported subjects, whatever sizes the floor was decided on.
	perCohort := make([]int64, len(cohorts))
	for _, r := range rows {
		perCohort[r.CohortID]++
	}
	rep.Withheld = WithholdSmall(perCohort, minSize)
	if len(rep.Withheld) > 0 {
		drop := withheldSet(rep.Withheld)
		rows = slices.DeleteFunc(rows, func(r dataset.CohortAssignment) bool { return drop[r.CohortID] })
	}
	rep.Exported = len(rows)
	if err := dataset.PutParquet(ctx, out, "assignments.parquet", rows); err != nil {
		return err
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write([]string{"subject_id", "cohort_id", "distance", "run_id"})
	for _, r := range rows {
		cw.Write([]string{r.SubjectID, strconv.FormatInt(r.CohortID, 10), strconv.FormatFloat(r.Distance, 'g', 6, 64), r.RunID})
	}
	cw.Flush()
	if err := out.PutFile(ctx, "assignments.csv", buf.Bytes(), int64(len(rows))); err != nil {
		return err
	}
	// Profiles: with noisy sizes the noisy size only (the exact one is in
	// the steward report), else the exact size.
	profiles := rep.releasedProfiles()
	noisy := rep.noisy()
	buf.Reset()
	cw = csv.NewWriter(&buf)
	sizeCol := "size"
	if noisy {
		sizeCol = "noisy_size"
	}
	cw.Write([]string{"cohort_id", sizeCol, "explanation", "note", "centroid", "top_features"})
	var prows []ProfileRow
	var erows []ExactProfileRow
	for _, p := range profiles {
		cj, _ := json.Marshal(p.Centroid)
		tj, _ := json.Marshal(p.Top)
		size := int64(p.Size)
		if noisy {
			size = *p.NoisySize
			prows = append(prows, ProfileRow{CohortID: int64(p.CohortID), NoisySize: size, Centroid: string(cj), TopFeatures: string(tj), Explanation: p.Explanation, Note: p.Note})
		} else {
			erows = append(erows, ExactProfileRow{CohortID: int64(p.CohortID), Size: size, Centroid: string(cj), TopFeatures: string(tj), Explanation: p.Explanation, Note: p.Note})
		}
		cw.Write([]string{strconv.Itoa(p.CohortID), strconv.FormatInt(size, 10), p.Explanation, p.Note, string(cj), string(tj)})
	}
	cw.Flush()
	var err error
	if noisy {
		err = dataset.PutParquet(ctx, out, "profiles.parquet", prows)
	} else {
		err = dataset.PutParquet(ctx, out, "profiles.parquet", erows)
	}
	if err != nil {
		return err
	}
	if err := out.PutFile(ctx, "profiles.csv", buf.Bytes(), int64(len(profiles))); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(profiles, "", "  ")
	if err := out.PutFile(ctx, "profiles.json", append(js, '\n'), int64(len(profiles))); err != nil {
		return err
	}
	return writePlots(ctx, out, f, profiles)
}

// writePlots adds the cohort sizes and the centroid map as PNG files. The
// centroids plotted are the profiles' (in original units, log1p-scaled so
// that spend does not dominate), which in DP runs are released values.
func writePlots(ctx context.Context, out *dataset.Output, f *Features, profiles []Profile) error {
	png, err := PlotSizes(profiles)
	if err != nil {
		return err
	}
	if err := out.PutFile(ctx, "cohort_sizes.png", png, 0); err != nil {
		return err
	}
	if len(profiles) < 2 {
		return nil
	}
	cents := make([][]float64, len(profiles))
	sizes := make([]float64, len(profiles))
	labels := make([]string, len(profiles))
	for i, p := range profiles {
		cents[i] = make([]float64, len(f.Names))
		for j, n := range f.Names {
			cents[i][j] = math.Log1p(math.Max(0, p.Centroid[n.Name]))
		}
		sizes[i] = float64(p.Size) // 0 in releases with noisy sizes
		if p.NoisySize != nil {
			sizes[i] = float64(*p.NoisySize)
		}
		labels[i] = fmt.Sprintf("cohort %d", p.CohortID)
	}
	if png, err = PlotCentroidsNamed(cents, sizes, labels, featureLabels(f)); err != nil {
		return err
	}
	return out.PutFile(ctx, "cohort_map.png", png, 0)
}

func outRefFor(ctx context.Context, cfg Config, opt dataset.URLOptions) func() (dataset.Ref, error) {
	return func() (dataset.Ref, error) { return open.Ref(ctx, cfg.Output, opt) }
}

// runDP is the DP k-means part of Run: the budget was spent before any data
// was read; from here on only released quantities leave the run, except
// each consented subject's own assignment (computed from the released
// centres and the subject's own features).
func runDP(ctx context.Context, cfg Config, pol *privacy.Policy, feats *Features, categories []string, ix *privacy.ConsentIndex, build, export []string, rep *Report, outRef func() (dataset.Ref, error), start time.Time, opt dataset.URLOptions) (*Report, error) {
	k, _ := strconv.Atoi(cfg.KMeans.K)
	// Which category is most common in a hash bucket is a count of the
	// data: DP runs name buckets by the public catalog, or by number.
	nameBucketsByCatalog(feats.Names, categories, cfg.Features.CategoryBuckets)
	x := feats.ScaledForDP(cfg.Features)
	rep.DP.Clipped = kmeans.ClipRows(x, cfg.Privacy.ClipRadius)
	res, err := kmeans.FitDP(ctx, x, k, *cfg.Privacy, rep.DP.Sigma, cfg.noiseSource(), cfg.KMeans.Seed)
	if err != nil {
		return nil, err
	}
	labels, dist := kmeans.Assign(x, res.Centroids)
	np, err := (&kmeans.KMeans{K: k, NInit: cfg.KMeans.NInit, MaxIter: cfg.KMeans.MaxIter, Tol: cfg.KMeans.Tol, Seed: cfg.KMeans.Seed, Workers: cfg.Workers}).Fit(ctx, x)
	if err != nil {
		return nil, err
	}
	if np.Inertia > 0 {
		rep.DP.NormalizedObjective = kmeans.Objective(x, res.Centroids) / np.Inertia
	}
	rep.K, rep.Iterations = k, res.Iterations
	// On the exact data, like the normalized objective: steward only.
	rep.Silhouette = kmeans.Silhouette(x, labels, k, 2000, cfg.KMeans.Seed)
	// Noisy sizes of the final assignment (the budget has them), used by
	// the floor and the profiles.
	r := rand.New(cfg.noiseSource())
	exact := make([]int, k)
	for _, l := range labels {
		exact[l]++
	}
	noisy := make([]int64, k)
	for c := range k {
		z, err := dp.DiscreteGaussian(r, cfg.NoisySizes)
		if err != nil {
			return nil, err
		}
		noisy[c] = max(0, int64(exact[c])+z)
	}
	cohorts, suppressed, err := ApplyFloorSizes(x, labels, k, cfg.Floor, noisy, res.Centroids)
	if err != nil {
		return nil, err
	}
	rep.Cohorts, rep.Suppressed = len(cohorts), len(suppressed)
	rep.Profiles = DPProfiles(feats, cfg.Features, res.Centroids, cohorts, noisy, res.Sigma*cfg.Privacy.ClipRadius)
	ref, err := outRef()
	if err != nil {
		return nil, err
	}
	return exportRun(ctx, ref, cfg, pol, feats, cohorts, &kmeans.Result{Dist: dist}, ix, build, export, rep, start, map[string]string{"dp": "true"}, opt)
}

// ContributorsFile is the name of the contributors filter in a steward
// report.
const ContributorsFile = lineage.ContributorsFile
