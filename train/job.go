package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/internal/failpoint"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

// JobConfig is a training job (configs/train.yaml).
type JobConfig struct {
	privacy.JobTables `yaml:",inline"`
	Output            string `yaml:"output"` // URL prefix of the outputs
	// Catalog is the URL of the shop's public product catalog (the catalog
	// contract). When set it is the item universe: the item factors have
	// exactly its items and events on other items are dropped. Empty: the
	// items are chosen by DP partition selection (charged to the budget).
	Catalog      string       `yaml:"catalog"`
	Interactions Interactions `yaml:"interactions"`
	Model        mf.Config    `yaml:"model"`
	Evaluation   Evaluation   `yaml:"evaluation"`
	// TopK recommendations are written for each subject who allows
	// personalization; 0 writes none.
	TopK int `yaml:"top_k"`
	// NonPersonalized also writes nonpersonalized.parquet: the top_k most
	// popular products by the run's DP item-count histogram (no further
	// budget), the same list for every customer, for customers who do not
	// allow personalization (DSA Art. 38).
	NonPersonalized bool `yaml:"non_personalized"`
	// Exposure turns concentrated recommendations into a warning.
	Exposure ExposureConfig `yaml:"exposure"`
	// FactorsArrow also writes the item factors as an Arrow IPC file.
	FactorsArrow bool           `yaml:"factors_arrow"`
	Budget       *budget.Config `yaml:"budget"`
	// ContributorsFPR is the false-positive rate of the filter of the
	// subjects whose data trained the model (contributors.bloom).
	ContributorsFPR float64 `yaml:"contributors_fpr"`
	// StewardKeyFile is the file of the steward key that keys the
	// contributors filter; empty: $VEIL_STEWARD_KEY_FILE, else
	// $VEIL_STEWARD_KEY (lineage.LoadStewardKey), else a random key of the
	// filter's own, kept beside it in the steward report.
	StewardKeyFile string `yaml:"steward_key_file"`
	// Steward is the URL of the steward reports (exact counts, evaluation,
	// diagnostics, the contributors filter); default: _steward next to the
	// output (release.StewardURL). Pipelines set STATE/steward.
	Steward string `yaml:"steward"`
	// CheckpointEvery steps the state is saved, so that a crashed run
	// resumes where it stopped (0: every tenth of the plan, at most once
	// per 30 s of training, and after the last step).
	CheckpointEvery int `yaml:"checkpoint_every"`
	Workers         int `yaml:"workers"`
	// RunID names the run; empty: a new UUIDv7, or the id of the run whose
	// checkpoint is resumed.
	RunID string `yaml:"-"`
	// Charged, when set, is the ledger record in which the pipeline run
	// already spent this job's releases (with those of its other steps,
	// before any step read data): the job spends nothing itself.
	Charged *budget.Record `yaml:"-" json:"-"`
}

// Evaluation sets up the evaluation of a training run.
type Evaluation struct {
	HoldoutLast     int     `yaml:"holdout_last"`     // each subject's last k interactions by time (default 2)
	HoldoutFraction float64 `yaml:"holdout_fraction"` // or the most recent fraction, when holdout_last is 0
	HoldoutRandom   bool    `yaml:"holdout_random"`   // a random fraction instead of the most recent
	// Baselines trains a non-private model on the same split, for the
	// report only (never written), beside popularity.
	Baselines bool `yaml:"baselines"`
	// BaselineEpochs, BaselineSamplingRate and BaselineLearningRate are
	// the non-private baseline's epochs, q and Adam step (0: the model's).
	// A fair baseline is the best the same model does without privacy,
	// and without noise to average out, batch size and step are choices of
	// optimization alone (nothing here touches the DP model's plan). The
	// defaults, 5 epochs at q 0.1 and step 0.025 (50 steps), match 10
	// epochs at the model's q 0.4 and 0.05 (25 steps) on Online Retail and
	// the 10M-event shop within run-to-run noise with half the passes
	// (docs/benchmarks.md, the training job).
	BaselineEpochs       float64 `yaml:"baseline_epochs"`
	BaselineSamplingRate float64 `yaml:"baseline_sampling_rate"`
	BaselineLearningRate float64 `yaml:"baseline_learning_rate"`
	// Curve trains one more model per ε in CurveEpsilons (each a DP
	// release that spends budget) for the privacy-utility curve.
	Curve         bool      `yaml:"curve"`
	CurveEpsilons []float64 `yaml:"curve_epsilons"`
	// PrivacyAudit runs the one-run privacy audit (one more training run
	// with canaries, which spends budget like the model) and the
	// membership-inference baseline; the card shows the empirical ε lower
	// bound beside the proven ε.
	PrivacyAudit *mf.AuditConfig `yaml:"privacy_audit"`
	// WhiteBoxAudit runs the white-box audit of DP-SGD (one more training
	// run with Dirac canaries, which spends budget like the model); a
	// fault it flags fails the run, its bound goes to the steward report.
	WhiteBoxAudit *mf.WhiteBoxConfig `yaml:"white_box_audit"`
	Seed          uint64             `yaml:"seed"`
}

// DefaultJobConfig returns the defaults of every optional field.
func DefaultJobConfig() JobConfig {
	return JobConfig{Interactions: DefaultInteractions(), Model: mf.DefaultConfig(),
		Evaluation: Evaluation{HoldoutLast: 2, Baselines: true, BaselineEpochs: 5, BaselineSamplingRate: 0.1, BaselineLearningRate: 0.025, CurveEpsilons: []float64{1, 2, 4, 8}, Seed: 1},
		TopK:       20, ContributorsFPR: 0.01, Exposure: ExposureConfig{MaxGini: 0.95}}
}

// UnmarshalYAML fills what the YAML leaves out from DefaultJobConfig, also
// inside nested sections.
func (c *JobConfig) UnmarshalYAML(unmarshal func(any) error) error {
	type plain JobConfig
	p := plain(DefaultJobConfig())
	p.Interactions.EventWeights = nil
	if err := unmarshal(&p); err != nil {
		return err
	}
	if p.Interactions.EventWeights == nil {
		p.Interactions.EventWeights = DefaultInteractions().EventWeights
	}
	*c = JobConfig(p)
	return nil
}

// LoadJobConfig reads a job file, strictly.
func LoadJobConfig(path string) (JobConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JobConfig{}, fmt.Errorf("%w: %w", mf.ErrConfig, err)
	}
	var c JobConfig
	if err := strictyaml.Decode(path, data, &c); err != nil {
		return JobConfig{}, fmt.Errorf("%w: %w", mf.ErrConfig, err)
	}
	if err := c.Validate(); err != nil {
		return JobConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate reports whether the job can run.
func (c *JobConfig) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", mf.ErrConfig, fmt.Sprintf(f, a...)) }
	if c.Events == "" || c.Output == "" {
		return bad("events and output are required")
	}
	if err := c.Interactions.Validate(); err != nil {
		return err
	}
	if err := c.JobTables.Validate(); err != nil {
		return fmt.Errorf("%w: %w", mf.ErrConfig, err)
	}
	if c.Model.Epsilon == 0 {
		return bad("model.epsilon is required: a target ε, or .inf to train without privacy")
	}
	if err := c.Model.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	e := c.Evaluation
	if e.HoldoutLast < 0 || e.HoldoutFraction < 0 || e.HoldoutFraction >= 1 || (e.HoldoutLast == 0 && e.HoldoutFraction == 0) {
		return bad("evaluation: holdout_last %d, holdout_fraction %v: want holdout_last >= 1 or a fraction in (0, 1)", e.HoldoutLast, e.HoldoutFraction)
	}
	if !(e.BaselineEpochs >= 0 && e.BaselineEpochs <= 1000) {
		return bad("evaluation: baseline_epochs %v: want (0, 1000], or 0 for the model's epochs", e.BaselineEpochs)
	}
	if !(e.BaselineSamplingRate >= 0 && e.BaselineSamplingRate <= 1) {
		return bad("evaluation: baseline_sampling_rate %v: want (0, 1], or 0 for the model's sampling_rate", e.BaselineSamplingRate)
	}
	if !(e.BaselineLearningRate >= 0) || math.IsInf(e.BaselineLearningRate, 0) {
		return bad("evaluation: baseline_learning_rate %v: want a positive finite value, or 0 for the model's learning_rate", e.BaselineLearningRate)
	}
	// The baseline trains after the budget is spent: its settings are
	// checked whole now, not when it starts.
	if e.Baselines || e.Curve {
		if err := BaselineConfig(c.Model, e).Validate(); err != nil {
			return fmt.Errorf("evaluation: the non-private baseline (baseline_*): %w", err)
		}
	}
	for _, eps := range e.CurveEpsilons {
		if !(eps > 0) || math.IsInf(eps, 0) {
			return bad("evaluation: curve_epsilons %v: want positive finite values (∞ is the non-private baseline)", e.CurveEpsilons)
		}
	}
	if e.PrivacyAudit != nil {
		if err := e.PrivacyAudit.Validate(c.Model); err != nil {
			return err
		}
	}
	if e.WhiteBoxAudit != nil {
		if err := e.WhiteBoxAudit.Validate(); err != nil {
			return err
		}
	}
	if e.Curve && len(e.CurveEpsilons) == 0 {
		return bad("evaluation: curve is on but curve_epsilons is empty")
	}
	if !(c.Exposure.MaxGini > 0 && c.Exposure.MaxGini <= 1) {
		return bad("exposure.max_gini %v: want (0, 1]", c.Exposure.MaxGini)
	}
	if c.TopK < 0 || c.TopK > 1000 {
		return bad("top_k %d: want 0..1000", c.TopK)
	}
	if c.NonPersonalized && !c.Model.Private() {
		// The list is the DP popularity prior's ranking: without privacy it
		// would rank exact counts and could name every product of the data.
		return bad("non_personalized needs a DP model (a finite model.epsilon): the list ranks the DP item counts")
	}
	if c.NonPersonalized && c.TopK == 0 {
		return bad("non_personalized writes top_k products: top_k must be at least 1")
	}
	if !(c.ContributorsFPR > 0 && c.ContributorsFPR < 0.5) {
		return bad("contributors_fpr %v must be in (0, 0.5)", c.ContributorsFPR)
	}
	if c.Model.Private() || e.Curve {
		// Without a budget of its own a DP job needs a policy file that
		// sets budgets (the built-in policy sets none); the release path
		// checks that the file sets one for its table before anything is
		// read.
		if (c.Budget == nil || c.Budget.Ledger == "") && c.Policy == "" {
			return bad("DP training is a release: a budget with a ledger is required, or a policy file that sets the table's budget")
		}
		if c.Budget != nil && (c.Budget.Ledger != "" || c.Budget.Epsilon != 0 || c.Budget.Delta != 0) {
			if err := c.Budget.Policy.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Report is what a training run did: the steward report
// (steward_report.json), with exact counts, diagnostics and evaluation on
// private data. What a DP run releases is the public model card (Card),
// built from the settings, the plan, the guarantee and the ledger's charge
// only.
type Report struct {
	RunID       string `json:"run_id"`
	LogicalDate string `json:"logical_date"`
	// Output is the release (item factors, recommendations, public card);
	// Steward the steward report.
	Output   string   `json:"output"`
	Steward  string   `json:"steward_report"`
	Events   string   `json:"events"`
	Purposes []string `json:"purposes"`
	// Filter to Curve, Audit to Exposure and Recommended to Warnings are
	// exact figures of the private data: a DP run's public report
	// (Public) leaves them out, and they stay in the steward report.
	Filter       privacy.Report `json:"filter,omitzero"`
	Subjects     int            `json:"subjects,omitzero"`
	Items        int            `json:"items,omitzero"`
	Interactions int            `json:"interactions,omitzero"`
	Model        mf.Config      `json:"-"`
	Training     *mf.Stats      `json:"training,omitempty"`
	// Guarantee is the released model's own guarantee (nil: non-private);
	// Charged is what the ledger charged the run for all its releases
	// (the model, curve points, the audit's run), with the breakdown.
	Guarantee *Guarantee      `json:"model_guarantee,omitempty"`
	Charged   *release.Charge `json:"budget_charged,omitempty"`
	Eval      Eval            `json:"evaluation,omitzero"`
	Curve     []CurvePoint    `json:"curve,omitempty"`
	Spent     *budget.Record  `json:"budget_record,omitempty"`
	Audit     *mf.AuditResult `json:"privacy_audit,omitempty"`
	WhiteBox  *audit.Report   `json:"white_box_audit,omitempty"`
	Exposure  *Exposure       `json:"exposure,omitempty"`
	Timings   Timings         `json:"seconds_by_phase"`
	ResumedAt int             `json:"resumed_at_step,omitempty"`
	// Existing: the run was committed earlier and nothing was trained
	// now; the report is the committed one.
	Existing bool `json:"-"`

	Contributors   *lineage.Contributors `json:"contributors,omitempty"`
	Recommended    int                   `json:"subjects_recommended,omitzero"`
	NotRecommended map[string]int        `json:"not_recommended,omitempty"`
	Warnings       []string              `json:"warnings,omitempty"`
	// Withheld says, in a DP run's public report, what was left out and
	// where it is.
	Withheld        string  `json:"withheld,omitempty"`
	Seconds         float64 `json:"seconds"`
	CurvePNG        []byte  `json:"-"`
	ExposurePNG     []byte  `json:"-"`
	recommendations recList
	because         [][]mf.Contribution // per recommendation: its reasons (shares)
	nonPersonalized []dataset.NonPersonalized
	// The event columns the policy keeps from personalization, and the
	// others training does not read (the card's main parameters).
	excludedByPolicy, unusedColumns []string
	config                          JobConfig // what the public card states
}

// DP reports whether the run made a DP release (the model, a curve point,
// an audit's training run): decided by its configuration (Model is the
// job's model settings), never by what the data produced. A report whose
// settings are unknown (zero) counts as DP.
func (r *Report) DP() bool {
	return r.Guarantee != nil || r.Charged != nil || r.Spent != nil || r.Model.Private()
}

// Public returns the report as it may be shown to whoever runs the job
// (a printed summary, --json, a scheduler's log): in a DP run only the
// run's identity, the model's guarantee, the ledger's charge and where the
// release and the steward report are. The exact counts, the consent
// filter's drops, the training diagnostics, the evaluation on the private
// holdout and the curve, the audits' results, the exposure and the
// warnings drawn from them are in the steward report only (DESIGN.md,
// "What leaves veil"). A run without a DP release is not a DP release: its
// report is returned as it is, exact figures included.
func (r *Report) Public() *Report {
	if !r.DP() {
		return r
	}
	return &Report{RunID: r.RunID, LogicalDate: r.LogicalDate, Output: r.Output, Steward: r.Steward, Events: r.Events, Purposes: r.Purposes,
		Model: r.Model, Guarantee: r.Guarantee, Charged: r.Charged, Spent: r.Spent, ResumedAt: r.ResumedAt, Existing: r.Existing, Seconds: r.Seconds, config: r.config,
		excludedByPolicy: r.excludedByPolicy, unusedColumns: r.unusedColumns, Withheld: withheldNote(r.Steward)}
}

// withheldNote says what a DP run's public report and logs leave out.
func withheldNote(steward string) string {
	where := "the steward report"
	if steward != "" {
		where += " " + steward
	}
	return "exact counts, consent filter drops, training diagnostics, evaluation on the private holdout, audit results and warnings drawn from them: steward only, in " + where
}

// Guarantee states what the released item factors are private for.
type Guarantee struct {
	Epsilon         float64 `json:"epsilon"`
	Delta           float64 `json:"delta"`
	Unit            string  `json:"unit"`
	Accountant      string  `json:"accountant"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	SamplingRate    float64 `json:"sampling_rate"`
	Steps           int     `json:"steps"`
	Clip            float64 `json:"clip_norm"`
	MaxInteractions int     `json:"max_interactions"`
}

// Eval is the evaluation of a run and its baselines on the same split.
type Eval struct {
	Holdout    string      `json:"holdout"`
	Model      mf.Metrics  `json:"model"`
	Popularity mf.Metrics  `json:"popularity"`
	NonPrivate *mf.Metrics `json:"non_private,omitempty"`
}

// CurvePoint is one point of the privacy-utility curve.
type CurvePoint struct {
	Epsilon float64    `json:"epsilon"` // +Inf: non-private (JSON: null)
	Metrics mf.Metrics `json:"metrics"`
	// Note says why a point has no model (its metrics are zero).
	Note string `json:"note,omitempty"`
}

// MarshalJSON writes ε = ∞ as null.
func (p CurvePoint) MarshalJSON() ([]byte, error) {
	var e any = p.Epsilon
	if math.IsInf(p.Epsilon, 1) {
		e = nil
	}
	return json.Marshal(struct {
		Epsilon any        `json:"epsilon"`
		Metrics mf.Metrics `json:"metrics"`
		Note    string     `json:"note,omitempty"`
	}{e, p.Metrics, p.Note})
}

// Files of a training run. The release (OUTPUT/dt=D/run=R) holds the
// factors, the recommendations and the public model card; the steward
// report (STEWARD/train/dt=D/run=R) the rest.
const (
	FactorsFile         = "item_factors.parquet"
	RecommendationsFile = "recommendations.parquet"
	CardJSONFile        = "model_card.json"
	CardMarkdownFile    = "model_card.md"

	StewardReportFile = "steward_report.json"   // the Report
	StewardCardFile   = "model_card_steward.md" // the card's steward appendix
	CurvePNGFile      = "privacy_utility.png"   // from evaluation on the private holdout
	ExposurePNGFile   = "exposure.png"          // over every subject's recommendations
	checkpointFile    = "train.ckpt"
)

// Purposes a training job needs: building the model and showing each
// subject recommendations are both personalization (TCF purpose 6).
var Purposes = []string{privacy.Personalization}

// Run runs a training job at a logical date: plan and spend the budget,
// read the consented interactions, train (resuming a checkpoint of the same
// run), evaluate, and commit factors, recommendations, metrics and the
// model card together.
func Run(ctx context.Context, cfg JobConfig, day time.Time, opt dataset.URLOptions, log *slog.Logger) (*Report, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	cfg.Model.Workers = workers
	in, err := cfg.Open(ctx, Purposes, opt)
	if err != nil {
		return nil, err
	}
	// A model trained without DP is a release without any guarantee: only
	// the data steward may allow it, in the policy file.
	if !cfg.Model.Private() {
		if err := in.Policy.AllowNonPrivate("model.epsilon .inf (training without differential privacy)"); err != nil {
			return nil, err
		}
	}
	outRef, err := open.Ref(ctx, cfg.Output, opt)
	if err != nil {
		return nil, err
	}
	rep := &Report{LogicalDate: day.Format(time.DateOnly), Events: cfg.Events, Purposes: Purposes, Model: cfg.Model, NotRecommended: map[string]int{}, config: cfg}
	rep.excludedByPolicy, rep.unusedColumns = excludedColumns(in.Policy)

	// A checkpoint of this job and date resumes its run, under its run id.
	ckptKey := dataset.Join(outRef.Key, "_checkpoints", "dt="+rep.LogicalDate, checkpointFile)
	resume, err := readCheckpoint(ctx, outRef, ckptKey, &cfg, rep)
	if err != nil {
		return nil, err
	}

	plan, curvePlans, err := planAndSpend(ctx, &cfg, opt, day, rep, log)
	if err != nil {
		return nil, err
	}
	// A run whose outputs are committed never trains again: a retry after
	// the commit (a crashed runner, a repeated --run-id) returns the
	// committed report. The ledger above already refused the id if it
	// planned other releases.
	if done, err := committedRun(ctx, outRef, rep.LogicalDate, rep.RunID); done != nil || err != nil {
		return done, err
	}
	if cfg.Model.Private() {
		rep.Guarantee = &Guarantee{Epsilon: plan.Epsilon, Delta: plan.Delta, Unit: "subject", Accountant: plan.Accountant,
			NoiseMultiplier: plan.NoiseMultiplier, SamplingRate: plan.SamplingRate, Steps: plan.Steps, Clip: cfg.Model.Clip, MaxInteractions: cfg.Model.MaxInteractions}
	}

	loading := time.Now()
	data, ix, err := loadData(ctx, in, cfg, day, workers, rep, log)
	if err != nil {
		return nil, err
	}
	loaded := time.Since(loading).Seconds()

	// Train on the split, so that the released model is the one evaluated.
	ev := cfg.Evaluation
	tr, test := data.Split(ev.HoldoutLast, ev.HoldoutFraction, ev.HoldoutRandom, ev.Seed)
	save := func(c *mf.Checkpoint) error {
		if err := dataset.PutBytes(ctx, outRef.Store, ckptKey, c.Marshal()); err != nil {
			return err
		}
		failpoint.Inject(fmt.Sprintf("train:after-checkpoint:%d", c.StepsDone))
		return nil
	}
	x, err := RunExperiment(ctx, tr, test, cfg.Model, plan, ev, curvePlans,
		mf.FitOptions{Log: log, Checkpoint: save, CheckpointEvery: cfg.CheckpointEvery, Resume: resume, RunID: rep.RunID}, workers)
	if err != nil {
		return nil, err
	}
	m := x.Model
	rep.Training, rep.Eval, rep.Timings = x.Stats, x.Eval, x.Timings
	rep.Timings.Load = loaded
	rep.Curve, rep.CurvePNG = x.Curve, x.CurvePNG

	if err := runAudits(ctx, tr, cfg, plan, rep, log); err != nil {
		return nil, err
	}

	// Recommendations: from the released factors and each subject's own
	// interactions, only for subjects who allow personalization.
	if cfg.TopK > 0 {
		if err := recommendAll(rep, data, m, ix, cfg, workers, log); err != nil {
			return nil, err
		}
	}
	if err := writeOutputs(ctx, outRef, cfg, opt, day, m, data.Subjects, rep, start); err != nil {
		return nil, err
	}
	if err := outRef.Store.Delete(ctx, ckptKey); err != nil && !errors.Is(err, dataset.ErrNotExist) {
		log.Warn("could not delete the checkpoint of a committed run", "key", ckptKey, "err", err)
	}
	log.Info("training run committed", "run_id", rep.RunID, "release", rep.Output, "steward_report", rep.Steward)
	return rep, nil
}

// readCheckpoint reads the checkpoint at ckptKey, if there is one: its run
// resumes under its run id (cfg.RunID, which must agree if set). Without
// one, a run without an id gets a new UUIDv7. It sets rep's run id and
// where the run resumes.
func readCheckpoint(ctx context.Context, outRef dataset.Ref, ckptKey string, cfg *JobConfig, rep *Report) (*mf.Checkpoint, error) {
	var resume *mf.Checkpoint
	switch data, err := dataset.ReadAll(ctx, outRef.Store, ckptKey); {
	case err == nil:
		if resume, err = mf.UnmarshalCheckpoint(data); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it to start over)", outRef.Store.Location()+"/"+ckptKey, err)
		}
		if cfg.RunID != "" && cfg.RunID != resume.RunID {
			return nil, fmt.Errorf("%w: %s belongs to run %s, not %s (delete it to start over)", mf.ErrCheckpoint, ckptKey, resume.RunID, cfg.RunID)
		}
		cfg.RunID = resume.RunID
		rep.ResumedAt = resume.StepsDone
	case !errors.Is(err, dataset.ErrNotExist):
		return nil, err
	}
	if cfg.RunID == "" {
		cfg.RunID = uuid.Must(uuid.NewV7()).String()
	}
	rep.RunID = cfg.RunID
	return resume, nil
}

// planAndSpend plans every DP release of the run (the model, and the
// curve's models if asked for) and spends them in the ledger, before any
// data is read; a pipeline that already spent them passes cfg.Charged.
func planAndSpend(ctx context.Context, cfg *JobConfig, opt dataset.URLOptions, day time.Time, rep *Report, log *slog.Logger) (mf.Plan, []mf.Plan, error) {
	var err error
	// The public catalog decides the plan (no partition selection with it).
	if cfg.Catalog != "" {
		if cfg.Model.Catalog, err = ReadCatalog(ctx, cfg.Catalog, cfg.JobTables, opt); err != nil {
			return mf.Plan{}, nil, err
		}
	}
	// Plan every DP release and ask the ledger before reading any data.
	plan, err := cfg.Model.MakePlan()
	if err != nil {
		return mf.Plan{}, nil, err
	}
	var curvePlans []mf.Plan
	if cfg.Evaluation.Curve {
		if curvePlans, err = mf.CurvePlans(cfg.Model, cfg.Evaluation.CurveEpsilons); err != nil {
			return mf.Plan{}, nil, err
		}
	}
	if evs := releases(*cfg, plan, curvePlans); len(evs) > 0 {
		if cfg.Charged != nil {
			rep.Spent = cfg.Charged
		} else if rep.Spent, err = spend(ctx, *cfg, opt, day, "train", evs, log); err != nil {
			return mf.Plan{}, nil, err
		}
		c, err := release.Breakdown(*rep.Spent)
		if err != nil {
			return mf.Plan{}, nil, err
		}
		rep.Charged = &c
	}
	return plan, curvePlans, nil
}

// loadData reads the consented interactions and notes their exact counts
// and warnings in the steward's part of rep; a DP run logs none of them.
func loadData(ctx context.Context, in *privacy.JobInputs, cfg JobConfig, day time.Time, workers int, rep *Report, log *slog.Logger) (*mf.Data, *privacy.ConsentIndex, error) {
	data, ix, filtered, err := loadConsented(ctx, in, cfg.Interactions, cfg.JobTables, day, workers)
	if err != nil {
		return nil, nil, err
	}
	rep.Filter = filtered
	rep.Subjects, rep.Items, rep.Interactions = len(data.Subjects), len(data.Items), data.Interactions()
	if g := rep.Guarantee; g != nil && g.Delta*float64(rep.Subjects) >= 1 {
		// δ must be well below 1/n: a mechanism that publishes one random
		// subject's data in full is (0, 1/n)-DP.
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("δ = %g is not below 1/%d subjects: the guarantee is weak; lower model.delta", g.Delta, rep.Subjects))
	}
	// Logs are read by whoever reads the scheduler's logs: a DP run logs
	// no exact figure of the private data, only where they are.
	if rep.DP() {
		log.Info("interactions loaded; exact counts and warnings in the steward report", "steward_report", release.StewardURL(cfg.Steward, cfg.Output))
	} else {
		log.Info("interactions loaded (exact: not a DP run)", "subjects", rep.Subjects, "items", rep.Items, "interactions", rep.Interactions)
		for _, w := range rep.Warnings {
			log.Warn(w)
		}
	}
	return data, ix, nil
}

// runAudits runs the privacy audits the evaluation asks for, on the
// training split; their results go to the steward report only.
func runAudits(ctx context.Context, tr *mf.Data, cfg JobConfig, plan mf.Plan, rep *Report, log *slog.Logger) error {
	var err error
	if ac := cfg.Evaluation.PrivacyAudit; ac != nil {
		if rep.Audit, err = mf.AuditPrivacy(ctx, tr, cfg.Model, plan, *ac, log); err != nil {
			return err
		}
		// Its result is measured on the private data: steward only.
		log.Info("privacy audit done; its result is in the steward report")
	}
	if wc := cfg.Evaluation.WhiteBoxAudit; wc != nil && cfg.Model.Private() {
		if rep.WhiteBox, err = mf.AuditWhiteBox(ctx, tr, cfg.Model, plan, *wc, log); err != nil {
			return err
		}
		if err := rep.WhiteBox.Err(); err != nil {
			return err
		}
		log.Info("white-box privacy audit passed; its result is in the steward report", "proven_epsilon", rep.WhiteBox.ProvenEpsilon)
	}
	return nil
}

// recommendAll recommends cfg.TopK items to every subject who allows
// personalization, measures their exposure and, if asked for, ranks the
// non-personalized list.
func recommendAll(rep *Report, data *mf.Data, m *mf.Model, ix *privacy.ConsentIndex, cfg JobConfig, workers int, log *slog.Logger) error {
	var err error
	recommending := time.Now()
	if err := recommend(rep, data, m, ix, cfg.TopK, workers); err != nil {
		return err
	}
	// Exposure over the model's items (recommendations rank them all).
	items := make([]int32, rep.recommendations.Len())
	for i, r := range rep.recommendations.rows {
		items[i] = r.item
	}
	e := exposure(interactionsPerItem(data, m.Items), items)
	rep.Exposure = &e
	counts := make([]float64, len(m.Items))
	for _, j := range items {
		counts[j]++
	}
	if rep.ExposurePNG, err = PlotExposure(counts); err != nil {
		return err
	}
	if w := e.warning(cfg.Exposure); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	if cfg.NonPersonalized && rep.Training != nil {
		rep.nonPersonalized = nonPersonalized(m.Items, rep.Training.Popularity, cfg.TopK)
	}
	rep.Timings.Recommend = time.Since(recommending).Seconds()
	logTime(log, "recommended", rep.Timings.Recommend)
	return nil
}

// committedRun returns a report naming a run whose output is already
// committed under OUTPUT/dt=DATE/run=RUN_ID (Existing set), or nil when
// there is none.
func committedRun(ctx context.Context, outRef dataset.Ref, date, runID string) (*Report, error) {
	prefix := dataset.Join(outRef.Key, "dt="+date, "run="+runID)
	_, err := dataset.ReadManifest(ctx, outRef.Store, prefix)
	switch {
	case errors.Is(err, dataset.ErrNotExist), errors.Is(err, dataset.ErrNotCommitted):
		return nil, nil
	case err != nil:
		return nil, err
	}
	// The full report is the steward's (in the steward report); what
	// the caller needs of a committed run is where it is.
	return &Report{RunID: runID, LogicalDate: date, Output: outRef.Store.Location() + "/" + prefix, Existing: true}, nil
}

// releases lists the DP releases of a training run: the model, one more
// model per curve point, and the audit's training run.
func releases(cfg JobConfig, plan mf.Plan, curve []mf.Plan) []accountant.Event {
	var evs []accountant.Event
	if cfg.Model.Private() {
		evs = append(evs, plan.Events()...)
	}
	for _, p := range curve {
		evs = append(evs, noted(p.Events(), fmt.Sprintf("privacy-utility curve point ε %g", p.Target()))...)
	}
	if cfg.Evaluation.PrivacyAudit != nil && cfg.Model.Private() {
		evs = append(evs, noted(plan.Events(), "one-run privacy audit: a training run with canaries (its guesses, a DP release, go to the steward)")...)
	}
	if cfg.Evaluation.WhiteBoxAudit != nil && cfg.Model.Private() {
		evs = append(evs, noted(plan.Events(), whiteBoxNote)...)
	}
	return evs
}

// noted prefixes the notes of a plan's events with what run they belong to.
func noted(evs []accountant.Event, what string) []accountant.Event {
	for i := range evs {
		evs[i].Note = what + ": " + evs[i].Note
	}
	return evs
}

// LoadConsented reads the interactions of the subjects in an events table
// who allow the training purposes at day, as a training job does: the
// policy, consent, erasure and retention, the jurisdictions, the PII guard
// and the interaction settings ic. veil train mf uses it for an events
// table.
func LoadConsented(ctx context.Context, tables privacy.JobTables, ic Interactions, day time.Time, workers int, opt dataset.URLOptions) (*mf.Data, privacy.Report, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	in, err := tables.Open(ctx, Purposes, opt)
	if err != nil {
		return nil, privacy.Report{}, err
	}
	d, _, rep, err := loadConsented(ctx, in, ic, tables, day, workers)
	return d, rep, err
}

// loadConsented reads the interactions of subjects who allow the training
// purposes, after the PII guard has read the files.
func loadConsented(ctx context.Context, in *privacy.JobInputs, ic Interactions, tables privacy.JobTables, day time.Time, workers int) (*mf.Data, *privacy.ConsentIndex, privacy.Report, error) {
	ix, err := privacy.BuildConsentIndex(ctx, in.Policy, &in.Consent, &in.Erasure, day)
	if err != nil {
		return nil, nil, privacy.Report{}, err
	}
	flt, err := privacy.NewFilter(in.Policy, ix, Purposes)
	if err != nil {
		return nil, nil, privacy.Report{}, err
	}
	if err := tables.Restrict(flt); err != nil {
		return nil, nil, privacy.Report{}, err
	}
	sc, err := privacy.FilteredScan(ctx, in.Policy, flt, in.Events, []string{"event_type", "item_id"})
	if err != nil {
		return nil, nil, privacy.Report{}, err
	}
	_, err = privacy.ScanPII(ctx, sc.Store, sc.Keys, in.Policy)
	sc.Close()
	if err != nil {
		return nil, nil, privacy.Report{}, err
	}
	d, rep, err := LoadEvents(ctx, in.Policy, flt, in.Events, ic, day, workers)
	return d, ix, rep, err
}

// Identity returns the ledger identity of the job's events, by the rules
// of its policy (release.Identity): the events table's own, or the
// declared budget.dataset when the policy sets no budgets.
func (c *JobConfig) Identity(ctx context.Context, opt dataset.URLOptions) (string, error) {
	return release.Identity(ctx, c.Events, c.Budget, c.Policy, opt)
}

// Fingerprint is the SHA-256 of the job's whole configuration (outputs
// included; the run id and the pipeline's record aside): the ledger
// honours a run id again only for the same fingerprint.
func (c JobConfig) Fingerprint() string {
	c.RunID, c.Charged = "", nil
	return budget.Fingerprint(c)
}

// WindowDays returns the days of events the job reads, ending on the
// logical date: interactions.window_days, which the policy's retention may
// shorten. Its spends charge every budget period the window overlaps.
func (c *JobConfig) WindowDays(ctx context.Context, opt dataset.URLOptions) (int, error) {
	window := c.Interactions.WindowDays
	pol, err := privacy.ResolvePolicy(ctx, c.Policy, opt) // the pinned policy, if any
	if err != nil {
		return 0, err
	}
	if r := pol.RetentionDays(Purposes); r > 0 {
		window = min(window, r)
	}
	return window, nil
}

// spend records the run's releases in the budget ledger, refusing the run
// when they would exceed the budget. A retry with the same run id is not
// charged twice.
func spend(ctx context.Context, cfg JobConfig, opt dataset.URLOptions, day time.Time, job string, releases []accountant.Event, log *slog.Logger) (*budget.Record, error) {
	window, err := cfg.WindowDays(ctx, opt)
	if err != nil {
		return nil, err
	}
	rec, _, err := release.Spend(ctx, release.Request{Table: cfg.Events, Budget: cfg.Budget, PolicyFile: cfg.Policy, RunID: cfg.RunID, Job: job,
		LogicalDate: day, WindowDays: window, Accountant: cfg.Model.Accountant, Events: releases, Config: cfg.Fingerprint(), Log: log}, opt)
	if err != nil {
		return nil, err
	}
	failpoint.Inject("budget:after-spend")
	return &rec, nil
}

func holdoutText(e Evaluation) string {
	if e.HoldoutLast > 0 {
		return fmt.Sprintf("each subject's last %d interactions by time (subjects with no more than that many are training-only)", e.HoldoutLast)
	}
	if e.HoldoutRandom {
		return fmt.Sprintf("a random %.0f%% of each subject's interactions", 100*e.HoldoutFraction)
	}
	return fmt.Sprintf("the most recent %.0f%% of each subject's interactions by time", 100*e.HoldoutFraction)
}

// RunAudit runs the one-run privacy audit of a training job's settings on
// its data at a logical date, without writing a model: the audit's
// training run is a DP release like any other, so its spend is recorded
// (job "audit privacy") before any data is read.
func RunAudit(ctx context.Context, cfg JobConfig, ac mf.AuditConfig, day time.Time, opt dataset.URLOptions, log *slog.Logger) (*mf.AuditResult, *budget.Record, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Evaluation.PrivacyAudit = &ac
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	cfg.Model.Workers = workers
	in, err := cfg.Open(ctx, Purposes, opt)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Catalog != "" {
		if cfg.Model.Catalog, err = ReadCatalog(ctx, cfg.Catalog, cfg.JobTables, opt); err != nil {
			return nil, nil, err
		}
	}
	plan, err := cfg.Model.MakePlan()
	if err != nil {
		return nil, nil, err
	}
	if cfg.RunID == "" {
		cfg.RunID = uuid.Must(uuid.NewV7()).String()
	}
	var rec *budget.Record
	if cfg.Model.Private() {
		evs := noted(plan.Events(), "one-run privacy audit: a training run with canaries (its guesses, a DP release, go to the steward)")
		if rec, err = spend(ctx, cfg, opt, day, "audit privacy", evs, log); err != nil {
			return nil, nil, err
		}
	}
	data, _, _, err := loadConsented(ctx, in, cfg.Interactions, cfg.JobTables, day, workers)
	if err != nil {
		return nil, rec, err
	}
	res, err := mf.AuditPrivacy(ctx, data, cfg.Model, plan, ac, log)
	return res, rec, err
}
