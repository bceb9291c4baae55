package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

func newTrainCmd(env *Env) *cobra.Command {
	var configFile, date, runID string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "train --config FILE --logical-date D",
		Short: "Train recommendation factors under subject-level DP-SGD and write a model card",
		Long: `Run a training job: interactions of subjects who allow personalization,
implicit-feedback matrix factorization whose item factors are trained with
DP-SGD (the spend is checked against the budget ledger before any data is
read), evaluation against popularity and non-private baselines. The release,
committed under OUTPUT/dt=D/run=RUN_ID/, holds the item factors, top-K
recommendations for subjects who allow personalization and the public model
card (JSON and Markdown: the model's own guarantee, the ledger's charge for
the run and its breakdown by release, the plan and the settings; no count and
no evaluation on private data in a DP run). The steward report, committed
under STEWARD/train/dt=D/run=RUN_ID/ (steward: in the job file; default
_steward next to the output), holds steward_report.json (exact counts,
filter drops, diagnostics, evaluation, the privacy audit's result), the card's
steward appendix model_card_steward.md, the plots and the contributors
filter. A crashed run resumes from its checkpoint under the same run id.
See configs/train.yaml; veil train mf trains on a plain interactions file.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "(or use veil train mf)")
			if err != nil {
				return err
			}
			cfg, err := train.LoadJobConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			cfg.RunID = runID
			rep, err := train.Run(cmd.Context(), cfg, day, env.urlOptions(), env.logger())
			if err != nil {
				return usageIfConfig(err)
			}
			return printTrainReport(env.Stdout, rep, asJSON)
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "job file (see configs/train.yaml)")
	cmd.Flags().StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	cmd.Flags().StringVar(&runID, "run-id", "", "run id (a retry passes the same id so that its budget is not spent twice)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.AddCommand(newTrainMFCmd(env), newTrainPrepareCmd(env))
	return cmd
}

// printTrainReport prints a training run's public report: in a DP run the
// guarantee, the ledger's charge and where the release and the steward
// report are, no exact count and no evaluation on the private holdout
// (those are in the steward report). A run without a DP release prints
// its exact figures and says that it is not DP.
func printTrainReport(w io.Writer, full *train.Report, asJSON bool) error {
	rep := full.Public()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Existing {
		fmt.Fprintf(w, "run %s was committed earlier: nothing trained, nothing spent\n", rep.RunID)
	}
	exact := rep == full // Public returns the report itself when the run made no DP release
	if exact {
		fmt.Fprintf(w, "training run %s for %s: %d subjects, %d items, %d interactions (%d rows read, %d kept; exact figures: this run makes no DP release)\n",
			rep.RunID, rep.LogicalDate, rep.Subjects, rep.Items, rep.Interactions, rep.Filter.RowsRead, rep.Filter.RowsKept)
	} else {
		fmt.Fprintf(w, "training run %s for %s\n", rep.RunID, rep.LogicalDate)
	}
	if rep.ResumedAt > 0 {
		fmt.Fprintf(w, "resumed from the checkpoint after step %d\n", rep.ResumedAt)
	}
	printCharge(w, rep.Charged)
	printGuarantee(w, rep.Guarantee)
	if exact {
		for _, warning := range rep.Warnings {
			fmt.Fprintf(w, "WARNING: %s\n", warning)
		}
		printEval(w, rep.Eval, rep.Curve)
		if rep.Audit != nil {
			printAudit(w, rep.Audit)
		}
		fmt.Fprintf(w, "recommendations for %d subjects (not recommended: %s)\n", rep.Recommended, counts(rep.NotRecommended))
	} else {
		fmt.Fprintf(w, "withheld (%s)\n", rep.Withheld)
	}
	fmt.Fprintf(w, "release: %s\nsteward report: %s\n", rep.Output, rep.Steward)
	return nil
}

// printCharge prints what the budget ledger charged a run, to the last
// digit, and each of its releases alone at the same δ.
func printCharge(w io.Writer, c *release.Charge) {
	if c == nil {
		fmt.Fprintln(w, "budget: nothing charged (no DP release)")
		return
	}
	full := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	fmt.Fprintf(w, "budget: the ledger charged ε %s at δ %s to %s (period %s, %s) for this run's %d releases, each alone at δ %s:\n",
		full(c.Epsilon), full(c.Delta), c.Dataset, c.Period, c.Accountant, len(c.Releases), full(c.Delta))
	for _, r := range c.Releases {
		fmt.Fprintf(w, "  ε %-20s %s\n", full(r.Epsilon), r.Release)
	}
	if c.SetBy != "" {
		fmt.Fprintf(w, "  budget set by %s\n", c.SetBy)
	}
}

// printGuarantee prints the released model's own guarantee.
func printGuarantee(w io.Writer, g *train.Guarantee) {
	if g == nil {
		fmt.Fprintln(w, "trained WITHOUT differential privacy")
		return
	}
	fmt.Fprintf(w, "the model's own guarantee: released item factors are (ε %s, δ %s)-DP per subject (%s: σ %.4g, q %.3g, %d steps, clip %g, ≤%d interactions per subject)\n",
		strconv.FormatFloat(g.Epsilon, 'g', -1, 64), strconv.FormatFloat(g.Delta, 'g', -1, 64), g.Accountant, g.NoiseMultiplier, g.SamplingRate, g.Steps, g.Clip, g.MaxInteractions)
}

func printEval(w io.Writer, ev train.Eval, curve []train.CurvePoint) {
	fmt.Fprintf(w, "held out: %s\n", ev.Holdout)
	fmt.Fprintf(w, "  %-22s %9s %9s %9s %9s %9s\n", "model", "Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "coverage")
	row := func(name string, m mf.Metrics) {
		fmt.Fprintf(w, "  %-22s %9.4f %9.4f %9.4f %9.4f %9.3f\n", name, m.Recall10, m.Recall20, m.NDCG10, m.NDCG20, m.Coverage)
	}
	row("this model", ev.Model)
	if ev.NonPrivate != nil {
		row("non-private", *ev.NonPrivate)
	}
	row("popularity", ev.Popularity)
	if len(curve) > 0 {
		fmt.Fprintln(w, "privacy-utility curve:")
		fmt.Fprintf(w, "  %-6s %9s %9s\n", "ε", "Recall@20", "NDCG@20")
		for _, p := range curve {
			e := strconv.FormatFloat(p.Epsilon, 'g', 4, 64)
			if math.IsInf(p.Epsilon, 1) {
				e = "∞"
			}
			fmt.Fprintf(w, "  %-6s %9.4f %9.4f\n", e, p.Metrics.Recall20, p.Metrics.NDCG20)
		}
	}
}

type mfOptions struct {
	in, epsilon, ledger, curvePNG string
	steward                       string
	consent, erasure, policy, day string
	catalog, out                  string
	publicData                    bool
	delta, budgetEps, budgetDelta float64
	cfg                           mf.Config
	eventTypes                    []string
	holdoutLast                   int
	holdoutFrac                   float64
	holdoutRandom                 bool
	baselineEpochs, baselineQ     float64
	baselineLR                    float64
	curve, baselines, asJSON      bool
}

// mfDefaultDelta is veil train mf's δ unless --delta says otherwise: a
// fixed public default, never derived from the input's number of subjects
// (which is private).
const mfDefaultDelta = 1e-6

// mfReport is what veil train mf prints.
type mfReport struct {
	Input string `json:"input"`
	// Consent says how consent was applied: the consent and erasure
	// tables at a logical date, by veil train prepare, or not at all
	// (--no-consent-public-data).
	Consent string `json:"consent"`
	// Filter to Warnings are exact figures of the input: a DP run on
	// the shop's subjects prints none of them (public); they are in its
	// steward report.
	Filter       *privacy.Report `json:"filter,omitempty"`
	Subjects     int             `json:"subjects,omitzero"`
	Items        int             `json:"items,omitzero"`
	Interactions int             `json:"interactions,omitzero"`
	Private      bool            `json:"private"`
	// Guarantee is the model's own (ε, δ) (null: non-private); Charged
	// what the ledger charged the run for all its releases (the model and
	// each curve point), with the breakdown (null: nothing charged).
	Guarantee *spentJSON         `json:"model_guarantee"`
	Charged   *release.Charge    `json:"budget_charged"`
	Plan      mf.Plan            `json:"plan"`
	Training  *mf.Stats          `json:"training,omitempty"`
	Eval      train.Eval         `json:"evaluation,omitzero"`
	Curve     []train.CurvePoint `json:"curve,omitempty"`
	Ledger    string             `json:"ledger,omitempty"`
	Warnings  []string           `json:"warnings,omitempty"`
	// Steward is where a DP run's steward report is; Withheld says what
	// it holds that the printed report leaves out.
	Steward     string  `json:"steward_report,omitempty"`
	Withheld    string  `json:"withheld,omitempty"`
	Seconds     float64 `json:"seconds"`
	LoadSeconds float64 `json:"load_seconds"`
}

// public returns what veil train mf prints of a DP run on the shop's
// subjects: the plan, the guarantee, the charge and where the steward
// report is; no exact count, filter drop, diagnostic or evaluation on the
// private holdout.
func (r *mfReport) public() *mfReport {
	return &mfReport{Input: r.Input, Consent: r.Consent, Private: r.Private, Guarantee: r.Guarantee, Charged: r.Charged, Plan: r.Plan, Ledger: r.Ledger,
		Steward: r.Steward, Seconds: r.Seconds, LoadSeconds: r.LoadSeconds,
		Withheld: "exact counts, consent filter drops, training diagnostics, the evaluation on the private holdout and the curve, warnings drawn from them: steward only, in the steward report"}
}

type spentJSON struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

func newTrainMFCmd(env *Env) *cobra.Command {
	o := mfOptions{cfg: mf.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "mf --in FILE --epsilon E [--delta D]",
		Short: "Train and evaluate on an events table, a prepared table or a public interactions file; print the metrics and the ledger's charge",
		Long: `Train DP matrix factorization and evaluate it. --in is one of:

  an events table of veil's contract: consent and erasure are applied as
    veil train does (the tables next to the events, or --consent and
    --erasure; the policy; retention; the PII guard) at --logical-date;
  a prepared table (veil train prepare): consent was applied when it was
    prepared;
  a public data set without consent records (CSV or Parquet with columns
    subject_id and item_id, and optionally event_time (orders the holdout),
    weight and event_type, see --event-types): only with
    --no-consent-public-data, which the report records.

An input that is neither a prepared table nor declared public needs its
consent table: without one veil train mf refuses to read it.

--epsilon inf trains without privacy on the same code path. δ is --delta,
by default 1e-6: a public constant, never derived from the number of
subjects. Each subject's last --holdout-last interactions are held out; the
model is evaluated (Recall@K, NDCG@K, coverage) against popularity and,
with --baselines, the non-private model. --curve adds ε ∈ {1, 2, 4, 8, ∞}.

A private run, or one with --curve, is a DP release of the input's
subjects: the model and each curve point are planned and charged to the
budget ledger given by --ledger (refused when they would exceed
--budget-epsilon) before any data is read. The report states what the
ledger charged the run, with the breakdown by release, and the model's own
guarantee apart. Such a run on the shop's subjects (an events or prepared
table) prints no exact count and no evaluation on the private holdout:
those go to a steward report (--steward; default: steward next to the
ledger the run is charged in, --ledger's or the policy's: STATE/steward
for a ledger at STATE/ledger), whose location it prints. A file or a
partition of a table is read as that table: an events table's consent
and erasure apply, and its budget is charged. A declared public data set, or a run without any DP release,
prints its exact figures.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runTrainMF(cmd, env, &o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "events table, prepared table or public interactions file (CSV or Parquet), path or URL")
	f.StringVar(&o.epsilon, "epsilon", "", "target ε, or inf for no privacy")
	f.StringSliceVar(&o.eventTypes, "event-types", nil, "keep only rows with these event_type values (default: all rows; events tables: view, add_to_cart, purchase)")
	f.Float64Var(&o.delta, "delta", mfDefaultDelta, "target δ of the model (a public constant; keep it well below 1/subjects)")
	f.StringVar(&o.consent, "consent", "", "consent table of an events table (default: consent/ next to it, or to the table that holds --in)")
	f.StringVar(&o.erasure, "erasure", "", "erasure table of an events table (default: erasure/ next to it, or to the table that holds --in)")
	f.StringVar(&o.policy, "policy", "", "policy file (default: the one VEIL_POLICY pins, else the built-in policy)")
	f.StringVar(&o.day, "logical-date", "", "date consent is decided at, YYYY-MM-DD (default: today, UTC)")
	f.BoolVar(&o.publicData, "no-consent-public-data", false, "the input is a public data set without consent records: train on every row (recorded in the report)")
	f.StringVar(&o.catalog, "catalog", "", "public product catalog (catalog contract) fixing the item universe; default: DP partition selection")
	f.StringVar(&o.out, "out", "", "directory to write the released files to: item factors, recommendations, model card")
	f.IntVar(&o.cfg.Dim, "dim", o.cfg.Dim, "factor dimension")
	f.Float64Var(&o.cfg.Epochs, "epochs", o.cfg.Epochs, "passes over the subjects (in expectation)")
	f.Float64Var(&o.cfg.SamplingRate, "sampling-rate", o.cfg.SamplingRate, "Poisson sampling rate q of subjects per step")
	f.Float64Var(&o.cfg.LearningRate, "learning-rate", o.cfg.LearningRate, "optimizer step")
	f.Float64Var(&o.cfg.Clip, "clip", o.cfg.Clip, "L2 clip norm of a subject's whole gradient")
	f.IntVar(&o.cfg.MaxInteractions, "max-interactions", o.cfg.MaxInteractions, "interactions kept per subject (sampled uniformly)")
	f.StringVar(&o.cfg.Accountant, "accountant", o.cfg.Accountant, "rdp or pld")
	f.Uint64Var(&o.cfg.Seed, "seed", o.cfg.Seed, "seed of initialization and contribution bounding (noise is never seeded)")
	f.IntVar(&o.holdoutLast, "holdout-last", 2, "hold out each subject's last k interactions by time")
	f.Float64Var(&o.holdoutFrac, "holdout-fraction", 0, "or the most recent fraction of each subject's interactions (with --holdout-last 0)")
	f.BoolVar(&o.holdoutRandom, "holdout-random", false, "hold out a random fraction instead of the most recent")
	f.BoolVar(&o.baselines, "baselines", true, "also train the non-private model for comparison")
	dev := train.DefaultJobConfig().Evaluation
	f.Float64Var(&o.baselineEpochs, "baseline-epochs", dev.BaselineEpochs, "epochs of the non-private baseline (0: --epochs)")
	f.Float64Var(&o.baselineQ, "baseline-sampling-rate", dev.BaselineSamplingRate, "sampling rate q of the non-private baseline (0: --sampling-rate)")
	f.Float64Var(&o.baselineLR, "baseline-learning-rate", dev.BaselineLearningRate, "optimizer step of the non-private baseline (0: --learning-rate)")
	f.BoolVar(&o.curve, "curve", false, "privacy-utility curve over ε ∈ {1, 2, 4, 8, ∞}")
	f.StringVar(&o.curvePNG, "curve-png", "", "write the curve's plot to this PNG file")
	f.StringVar(&o.ledger, "ledger", "", "budget ledger URL (required for private runs)")
	f.StringVar(&o.steward, "steward", "", "steward report store of a DP run on the shop's subjects (default: steward next to the ledger charged, --ledger's or the policy's)")
	f.Float64Var(&o.budgetEps, "budget-epsilon", 100, "total ε the ledger allows on this input")
	f.Float64Var(&o.budgetDelta, "budget-delta", 1e-5, "total δ the ledger allows on this input")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return cmd
}

// mfInput is how veil train mf reads its input.
type mfInput int

const (
	mfEvents   mfInput = iota // an events table: consent applied here
	mfPrepared                // a prepared table: consent applied by veil train prepare
	mfPublic                  // a declared public data set: no consent
)

// classifyMFInput decides how --in is read, before any of its rows are: a
// prepared table by its manifest, a public data set by the flag, anything
// else as an events table whose consent table must exist. A file or a
// partition of a table is the table (budget.Table finds it as the ledger
// does): its kind, and the consent and erasure tables beside it. It
// returns the kind, how consent is applied (for a prepared or public
// input) and the table that holds --in.
func classifyMFInput(cmd *cobra.Command, env *Env, o *mfOptions) (mfInput, string, string, error) {
	ctx := cmd.Context()
	table, m, err := budget.Table(ctx, o.in, env.urlOptions())
	if err != nil {
		return 0, "", "", err
	}
	if m == nil {
		table = o.in // no veil table holds it: a file or folder of its own
	}
	in := o.in
	if dataset.CanonicalURL(table) != dataset.CanonicalURL(o.in) {
		in = fmt.Sprintf("%s (a part of the table %s)", o.in, table)
	}
	if m != nil && o.publicData && m.Contract == dataset.EventsContract.Name {
		// An events table with consent or erasure records beside it is the
		// shop's population, never a public data set: they apply.
		for _, t := range []string{"consent", "erasure"} {
			tref, err := open.Ref(ctx, dataset.SiblingURL(table, t), env.urlOptions())
			if err != nil {
				return 0, "", "", err
			}
			if keys, err := dataset.Inputs(ctx, tref, dataset.Window{}); err == nil && len(keys) > 0 {
				return 0, "", "", usagef(fmt.Errorf("--no-consent-public-data: %s has a %s table beside it: it is the shop's subjects, not a public data set, and its consent and erasure apply", in, t))
			}
		}
	}
	if m != nil && m.Contract == train.InteractionsContract.Name {
		if _, ok := m.Find(train.InteractionsReportFile); ok {
			if o.publicData {
				return 0, "", "", usagef(fmt.Errorf("--no-consent-public-data: %s is a prepared table of consented subjects, not a public data set", in))
			}
			return mfPrepared, "applied by veil train prepare (consent and erasure at the table's logical date)", table, nil
		}
	}
	if o.publicData {
		if o.consent != "" || o.erasure != "" {
			return 0, "", "", usagef(fmt.Errorf("--no-consent-public-data and --consent/--erasure exclude each other"))
		}
		return mfPublic, "none: a public data set without consent records (--no-consent-public-data)", table, nil
	}
	consent := o.consent
	if consent == "" {
		consent = dataset.SiblingURL(table, "consent")
	}
	cref, err := open.Ref(ctx, consent, env.urlOptions())
	if err != nil {
		return 0, "", "", err
	}
	if keys, err := dataset.Inputs(ctx, cref, dataset.Window{}); err != nil || len(keys) == 0 {
		return 0, "", "", usagef(fmt.Errorf("%s has no consent table at %s: veil train mf applies consent and erasure like veil train (pass --consent), "+
			"or train on a prepared table (veil train prepare); for a public data set without consent records pass --no-consent-public-data", in, consent))
	}
	return mfEvents, "", table, nil
}

func runTrainMF(cmd *cobra.Command, env *Env, o *mfOptions) error {
	r := &mfRun{cmd: cmd, env: env, o: o, start: time.Now()}
	if err := r.parseFlags(); err != nil {
		return err
	}
	ctx := cmd.Context()
	var err error
	if r.kind, r.consentNote, r.table, err = classifyMFInput(cmd, env, o); err != nil {
		return err
	}
	// A DP release of the shop's subjects: what is printed carries only
	// DP and public figures; the rest goes to the steward report.
	r.dpRun = (r.cfg.Private() || r.ev.Curve) && r.kind != mfPublic
	if err := r.checkPolicy(ctx); err != nil {
		return err
	}
	if err := r.planAndSpend(ctx); err != nil {
		return err
	}
	d, err := r.load(ctx)
	if err != nil {
		return err
	}
	tr, test := d.Split(r.ev.HoldoutLast, r.ev.HoldoutFraction, r.ev.HoldoutRandom, r.ev.Seed)
	x, err := train.RunExperiment(ctx, tr, test, r.cfg, r.plan, r.ev, r.curve, mf.FitOptions{Log: env.logger()}, 0)
	if err != nil {
		return err
	}
	r.rep.Training, r.rep.Eval, r.rep.Curve = x.Stats, x.Eval, x.Curve
	if o.out != "" {
		if err := writeMFRelease(ctx, env, o.out, d, x.Model, r.cfg, r.plan); err != nil {
			return err
		}
	}
	r.rep.Seconds = time.Since(r.start).Seconds()
	if o.curvePNG != "" {
		if err := os.WriteFile(o.curvePNG, x.CurvePNG, 0o644); err != nil {
			return err
		}
	}
	return r.print(ctx, x)
}

// mfRun is one run of veil train mf, its steps in the order runTrainMF
// takes them.
type mfRun struct {
	cmd   *cobra.Command
	env   *Env
	o     *mfOptions
	start time.Time

	// from the flags
	cfg          mf.Config
	ev           train.Evaluation
	day          time.Time
	budgetPolicy budget.Policy

	// from the input
	kind        mfInput
	consentNote string
	table       string
	dpRun       bool

	// planned and spent before any data is read
	plan  mf.Plan
	curve []mf.Plan
	runID string
	rep   *mfReport
}

// parseFlags checks the flags and turns them into the run's settings.
func (r *mfRun) parseFlags() error {
	o := r.o
	if o.in == "" || o.epsilon == "" {
		return usagef(fmt.Errorf("--in and --epsilon are required"))
	}
	eps, err := parseEpsilon(o.epsilon)
	if err != nil {
		return usagef(err)
	}
	r.budgetPolicy = budget.Policy{Epsilon: o.budgetEps, Delta: o.budgetDelta, Period: "total"}
	if err := r.budgetPolicy.Validate(); err != nil {
		return usagef(fmt.Errorf("--budget-epsilon, --budget-delta: %w", err))
	}
	// 0 asks for the model's setting; a value out of range (NaN too) is a
	// mistake to report, not another way to ask for it.
	switch {
	case !(o.baselineEpochs >= 0 && o.baselineEpochs <= 1000):
		return usagef(fmt.Errorf("--baseline-epochs %v: want (0, 1000], or 0 for --epochs", o.baselineEpochs))
	case !(o.baselineQ >= 0 && o.baselineQ <= 1):
		return usagef(fmt.Errorf("--baseline-sampling-rate %v: want (0, 1], or 0 for --sampling-rate", o.baselineQ))
	case !(o.baselineLR >= 0) || math.IsInf(o.baselineLR, 0):
		return usagef(fmt.Errorf("--baseline-learning-rate %v: want a positive finite value, or 0 for --learning-rate", o.baselineLR))
	}
	if o.curvePNG != "" && !o.curve {
		return usagef(fmt.Errorf("--curve-png needs --curve"))
	}
	r.day = time.Now().UTC().Truncate(24 * time.Hour)
	if o.day != "" {
		if r.day, err = time.Parse(time.DateOnly, o.day); err != nil {
			return usagef(fmt.Errorf("--logical-date %q: want YYYY-MM-DD", o.day))
		}
	}
	r.cfg = o.cfg
	r.cfg.Epsilon, r.cfg.Delta = eps, o.delta
	r.ev = train.Evaluation{HoldoutLast: o.holdoutLast, HoldoutFraction: o.holdoutFrac, HoldoutRandom: o.holdoutRandom, Baselines: o.baselines,
		BaselineEpochs: o.baselineEpochs, BaselineSamplingRate: o.baselineQ, BaselineLearningRate: o.baselineLR, Seed: r.cfg.Seed}
	if o.curve {
		r.ev.Curve, r.ev.CurveEpsilons = true, []float64{1, 2, 4, 8}
	}
	// The baseline trains after the budget is spent: check it whole now.
	if r.cfg.Private() && (r.ev.Baselines || r.ev.Curve) {
		if err := train.BaselineConfig(r.cfg, r.ev).Validate(); err != nil {
			return usagef(fmt.Errorf("the non-private baseline (--baseline-*): %w", err))
		}
	}
	if (r.ev.HoldoutLast < 1 && !(r.ev.HoldoutFraction > 0 && r.ev.HoldoutFraction < 1)) || r.ev.HoldoutLast < 0 {
		return usagef(fmt.Errorf("--holdout-last %d, --holdout-fraction %v: want holdout-last >= 1 or a fraction in (0, 1)", r.ev.HoldoutLast, r.ev.HoldoutFraction))
	}
	return nil
}

// checkPolicy refuses what the steward's policy does not allow, before
// anything is read or spent, and reads the public catalog.
func (r *mfRun) checkPolicy(ctx context.Context) error {
	o := r.o
	// A model of the shop's subjects trained without DP is a release
	// without any guarantee: only the steward's policy may allow it.
	// The policy is the pinned one when the deployment pins it
	// (VEIL_POLICY): a --policy of another file is refused here, before
	// anything is read or spent.
	pol, err := privacy.ResolvePolicy(ctx, o.policy, r.env.urlOptions())
	if err != nil && r.kind != mfPublic {
		return err
	}
	if !r.cfg.Private() && r.kind != mfPublic {
		if err := pol.AllowNonPrivate("--epsilon inf (training without differential privacy) on " + o.in); err != nil {
			return err
		}
	}
	if r.dpRun && o.curvePNG != "" {
		return usagef(fmt.Errorf("--curve-png: the curve is an evaluation on the private holdout of the shop's subjects; in a DP run it goes into the steward report (--steward), never beside the release"))
	}
	if o.catalog != "" {
		if r.cfg.Catalog, err = train.ReadCatalog(ctx, o.catalog, privacy.JobTables{Events: o.in, Consent: o.consent, Erasure: o.erasure}, r.env.urlOptions()); err != nil {
			return err
		}
	}
	return nil
}

// planAndSpend plans every release and spends it before reading any data:
// δ is public, so nothing here depends on the input's subjects.
func (r *mfRun) planAndSpend(ctx context.Context) error {
	o, cfg := r.o, r.cfg
	var err error
	if r.plan, err = cfg.MakePlan(); err != nil {
		return usageIfConfig(err)
	}
	if r.ev.Curve {
		if r.curve, err = mf.CurvePlans(cfg, r.ev.CurveEpsilons); err != nil {
			return usageIfConfig(err)
		}
	}
	r.runID = uuid.Must(uuid.NewV7()).String()
	r.rep = &mfReport{Input: o.in, Consent: r.consentNote, Private: cfg.Private(), Plan: r.plan}
	if cfg.Private() {
		r.rep.Guarantee = &spentJSON{Epsilon: r.plan.Epsilon, Delta: r.plan.Delta}
	}
	if !cfg.Private() && len(r.curve) == 0 {
		return nil
	}
	// The budget is the steward's when the policy sets budgets: the flags
	// may restate it (those not given are the policy's). Otherwise the
	// flags choose it, as a job's budget section does.
	policyBudgets, err := release.PolicySetsBudgets(ctx, o.policy, r.env.urlOptions())
	if err != nil {
		return err
	}
	if o.ledger == "" && !policyBudgets {
		return usagef(fmt.Errorf("a private run is a DP release of the input's subjects and spends budget: pass --ledger URL (and --budget-epsilon), or use a policy that sets the input's budget"))
	}
	job := &budget.Config{Ledger: o.ledger, Policy: r.budgetPolicy}
	if policyBudgets {
		job.Period = ""
		if !r.cmd.Flags().Changed("budget-epsilon") {
			job.Epsilon = 0
		}
		if !r.cmd.Flags().Changed("budget-delta") {
			job.Delta = 0
		}
	}
	req := release.Request{Table: o.in, Budget: job, PolicyFile: o.policy, RunID: r.runID, Job: "train mf", LogicalDate: r.day,
		Accountant: cfg.Accountant, Log: r.env.logger()}
	if cfg.Private() {
		req.Events = append(req.Events, r.plan.Events()...)
	}
	for i, p := range r.curve {
		for _, e := range p.Events() {
			e.Note = fmt.Sprintf("privacy-utility curve point ε %g: %s", r.ev.CurveEpsilons[i], e.Note)
			req.Events = append(req.Events, e)
		}
	}
	rec, b, err := release.Spend(ctx, req, r.env.urlOptions())
	if err != nil {
		return err
	}
	c, err := release.Breakdown(rec)
	if err != nil {
		return err
	}
	r.rep.Ledger, r.rep.Charged = b.Ledger, &c
	r.env.logger().Info("budget spent", "dataset", b.Dataset, "epsilon", rec.Epsilon, "delta", rec.Delta, "run_id", rec.RunID, "budget_set_by", b.SetBy)
	return nil
}

// load reads the interactions: the consented ones of an events table, or
// a file's.
func (r *mfRun) load(ctx context.Context) (*mf.Data, error) {
	o, rep := r.o, r.rep
	var d *mf.Data
	var err error
	switch r.kind {
	case mfEvents:
		ic := train.DefaultInteractions()
		if len(o.eventTypes) > 0 {
			ic.EventWeights = map[string]float64{}
			for _, t := range o.eventTypes {
				ic.EventWeights[t] = 1
			}
		}
		// Consent and erasure are the tables beside the events table,
		// also when --in is a part of it.
		tables := privacy.JobTables{Events: o.in, Consent: cmp.Or(o.consent, dataset.SiblingURL(r.table, "consent")),
			Erasure: cmp.Or(o.erasure, dataset.SiblingURL(r.table, "erasure")), Policy: o.policy}
		var filtered privacy.Report
		if d, filtered, err = train.LoadConsented(ctx, tables, ic, r.day, 0, r.env.urlOptions()); err != nil {
			return nil, err
		}
		rep.Filter = &filtered
		rep.Consent = fmt.Sprintf("consent and erasure tables as of %s", r.day.Format(time.DateOnly))
	default:
		if d, err = train.ReadFile(ctx, o.in, o.eventTypes, r.env.urlOptions()); err != nil {
			return nil, err
		}
	}
	rep.Subjects, rep.Items, rep.Interactions, rep.LoadSeconds = len(d.Subjects), len(d.Items), d.Interactions(), time.Since(r.start).Seconds()
	if r.cfg.Private() && r.cfg.Delta*float64(len(d.Subjects)) >= 0.1 {
		w := fmt.Sprintf("δ = %g is not well below 1/%d subjects: the guarantee is weak; lower --delta", r.cfg.Delta, len(d.Subjects))
		rep.Warnings = append(rep.Warnings, w)
		if !r.dpRun {
			r.env.logger().Warn(w)
		}
	}
	return d, nil
}

// print writes the steward report of a DP run and prints what the caller
// may read: in a DP run only DP and public figures.
func (r *mfRun) print(ctx context.Context, x *train.Experiment) error {
	o, env, plan := r.o, r.env, r.plan
	rep, full := r.rep, r.rep
	var err error
	if r.dpRun {
		if rep.Steward, err = writeMFSteward(ctx, env, o.steward, rep.Ledger, r.day, r.runID, rep, x.CurvePNG); err != nil {
			return err
		}
		rep = rep.public()
	}
	if o.asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := env.Stdout
	if r.dpRun {
		fmt.Fprintf(w, "%s: consent: %s\n", o.in, rep.Consent)
	} else {
		fmt.Fprintf(w, "%s: %d subjects, %d items, %d interactions (exact: %s); consent: %s\n", o.in, rep.Subjects, rep.Items, rep.Interactions, notDPNote(r.kind), rep.Consent)
	}
	printCharge(w, rep.Charged)
	if rep.Guarantee != nil {
		fmt.Fprintf(w, "the model's own guarantee: (ε %s, δ %s) per subject: σ %.4g, q %.3g, %d steps (%s)\n", strconv.FormatFloat(plan.Epsilon, 'g', -1, 64), strconv.FormatFloat(plan.Delta, 'g', -1, 64),
			plan.NoiseMultiplier, plan.SamplingRate, plan.Steps, plan.Accountant)
	} else {
		fmt.Fprintln(w, "trained WITHOUT differential privacy")
	}
	if r.dpRun {
		fmt.Fprintf(w, "training: %.2fs\nwithheld (%s)\nsteward report: %s\n", x.Stats.Seconds, rep.Withheld, rep.Steward)
		return nil
	}
	for _, warning := range full.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warning)
	}
	fmt.Fprintf(w, "training: %.2fs, %.0f subjects/s, %.2fs per epoch\n", x.Stats.Seconds, x.Stats.SubjectsPerSec, x.Stats.SecondsPerEp)
	printEval(w, full.Eval, full.Curve)
	return nil
}

// notDPNote says why veil train mf prints exact figures.
func notDPNote(kind mfInput) string {
	if kind == mfPublic {
		return "a declared public data set"
	}
	return "this run makes no DP release"
}

// writeMFSteward commits the steward report of a DP veil train mf run on
// the shop's subjects (its full report and the curve's plot) under
// STEWARD/train-mf/dt=D/run=RUN and returns its location. STEWARD is
// --steward, else steward next to the ledger the run was charged in
// (release.Spend's: the policy's when --ledger is not given); with
// neither it refuses, rather than write into the working directory.
func writeMFSteward(ctx context.Context, env *Env, steward, ledger string, day time.Time, runID string, rep *mfReport, curvePNG []byte) (string, error) {
	if steward == "" && ledger == "" {
		return "", usagef(errors.New("--steward: the steward report of a DP run on the shop's subjects needs a place, and no ledger was charged to put it beside"))
	}
	url := cmp.Or(steward, dataset.SiblingURL(ledger, "steward"))
	st, err := release.OpenSteward(ctx, url, env.urlOptions(), "train-mf", day, runID, "veil train mf")
	if err != nil {
		return "", err
	}
	rep.Steward = st.Location()
	err = st.PutJSON(ctx, train.StewardReportFile, rep)
	if err == nil && len(curvePNG) > 0 {
		err = st.Output().PutFile(ctx, train.CurvePNGFile, curvePNG, 0)
	}
	if err == nil {
		err = st.Commit(ctx, map[string]string{"job": "train mf", "run_id": runID, "logical_date": day.Format(time.DateOnly)})
	}
	if err != nil {
		st.Abort(ctx)
		return "", err
	}
	return st.Location(), nil
}

func newTrainPrepareCmd(env *Env) *cobra.Command {
	var configFile, date, out string
	var shards int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prepare --config FILE --logical-date D --out URL [--shards N]",
		Short: "Write the consented interactions of a training job as a prepared table",
		Long: `Read the interactions a training job would train on (consent for
personalization, erasure, retention, the interactions window and event
weights) and write them as a prepared table under OUT/dt=D: shards
part-NNNNN.parquet (subject_id, item_id, event_time, weight: one row per
subject and item) and prepare_report.json, committed by the manifest.
veil train mf --in OUT/dt=D trains on it; veil-beam prepare-interactions
writes the same table on a Beam runner.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			if out == "" {
				return usagef(errors.New("--out is required"))
			}
			cfg, err := train.LoadJobConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			rep, err := train.PrepareInteractions(cmd.Context(), cfg, day, out, shards, env.urlOptions(), env.logger())
			if err != nil {
				return usageIfConfig(err)
			}
			if asJSON {
				return printJSON(env, rep)
			}
			fmt.Fprintf(env.Stdout, "prepared %d interactions of %d subjects from %d rows read, %d kept, in %.1fs: %s\n",
				rep.Interactions, rep.Subjects, rep.Filter.RowsRead, rep.Filter.RowsKept, rep.Seconds, rep.Output)
			return nil
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "training job file (see configs/train.yaml)")
	cmd.Flags().StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	cmd.Flags().StringVar(&out, "out", "", "URL of the prepared table (the date's partition goes under it)")
	cmd.Flags().IntVar(&shards, "shards", 8, "files of the table (subjects split by a hash of their token)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// mfCard is the public model card of veil train mf: settings and the
// guarantee only (no count or evaluation of the private data).
type mfCard struct {
	Model     string    `json:"model"`
	Private   bool      `json:"private"`
	Epsilon   *float64  `json:"epsilon"`
	Delta     float64   `json:"delta,omitempty"`
	Unit      string    `json:"unit,omitempty"`
	Plan      mf.Plan   `json:"plan"`
	Settings  mf.Config `json:"settings"`
	Items     int       `json:"items"` // of the model: the catalog's or DP-selected
	ItemsFrom string    `json:"items_from"`
}

// writeMFRelease writes what veil train mf releases under dir: the item
// factors, each subject's top 20 and the public model card, committed by a
// manifest.
func writeMFRelease(ctx context.Context, env *Env, dir string, d *mf.Data, m *mf.Model, cfg mf.Config, plan mf.Plan) error {
	ref, err := open.Ref(ctx, dir, env.urlOptions())
	if err != nil {
		return err
	}
	out, err := dataset.NewOutput(ctx, ref.Store, ref.Key, nil, "veil train mf")
	if err != nil {
		return err
	}
	card := mfCard{Model: "implicit-feedback matrix factorization, item factors by DP-SGD", Private: cfg.Private(), Plan: plan, Settings: cfg, Items: len(m.Items), ItemsFrom: "all items of the input (no privacy)"}
	if !cfg.Private() {
		card.Settings.Epsilon = 0 // JSON has no ∞; "private": false says it
	}
	if cfg.Private() {
		e := plan.Epsilon
		card.Epsilon, card.Delta, card.Unit = &e, plan.Delta, "subject"
		card.ItemsFrom = "DP partition selection"
	}
	if len(cfg.Catalog) > 0 {
		card.ItemsFrom = "the public catalog"
	}
	err = func() error {
		if err := dataset.PutParquet(ctx, out, train.FactorsFile, train.Factors(m)); err != nil {
			return err
		}
		recs, err := train.RecommendExplained(d, m, 20, 0)
		if err != nil {
			return err
		}
		if err := dataset.PutParquet(ctx, out, train.RecommendationsFile, recs); err != nil {
			return err
		}
		js, err := json.MarshalIndent(card, "", "  ")
		if err != nil {
			return err
		}
		return out.PutFile(ctx, train.CardJSONFile, append(js, '\n'), 0)
	}()
	if err != nil {
		out.Abort(ctx)
		return err
	}
	if _, err := out.Commit(ctx, map[string]string{"job": "train mf"}); err != nil {
		out.Abort(ctx)
		return err
	}
	return nil
}

// parseEpsilon reads a target ε: a positive finite number, or +∞ spelled
// inf, +inf, infinity or YAML's .inf (no privacy). Zero, negative values,
// -∞ and NaN are refused: they never mean "no privacy".
func parseEpsilon(s string) (float64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case ".inf", "+.inf":
		return math.Inf(1), nil
	}
	eps, err := strconv.ParseFloat(t, 64)
	if err != nil || !(eps > 0) {
		return 0, fmt.Errorf("--epsilon %q: want a positive finite ε, or inf for no privacy", s)
	}
	return eps, nil
}
