package main

import (
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
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/train"
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
read), evaluation against popularity and non-private baselines, and outputs
committed together under OUTPUT/dt=D/run=RUN_ID/: item factors, top-K
recommendations for subjects who allow personalization, metrics, a model card
(JSON and Markdown) and, with evaluation.curve, the privacy-utility curve.
A crashed run resumes from its checkpoint under the same run id.
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

func printTrainReport(w io.Writer, rep *train.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Existing {
		fmt.Fprintf(w, "run %s was committed earlier: nothing trained, nothing spent\n", rep.RunID)
	}
	fmt.Fprintf(w, "training run %s for %s: %d subjects, %d items, %d interactions (%d rows read, %d kept)\n",
		rep.RunID, rep.LogicalDate, rep.Subjects, rep.Items, rep.Interactions, rep.Filter.RowsRead, rep.Filter.RowsKept)
	if rep.ResumedAt > 0 {
		fmt.Fprintf(w, "resumed from the checkpoint after step %d\n", rep.ResumedAt)
	}
	if g := rep.Guarantee; g != nil {
		fmt.Fprintf(w, "released item factors are (ε %.4g, δ %.3g)-DP per subject (%s: σ %.4g, q %.3g, %d steps, clip %g, ≤%d interactions per subject)\n",
			g.Epsilon, g.Delta, g.Accountant, g.NoiseMultiplier, g.SamplingRate, g.Steps, g.Clip, g.MaxInteractions)
	} else {
		fmt.Fprintln(w, "trained WITHOUT differential privacy")
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warning)
	}
	printEval(w, rep.Eval, rep.Curve)
	if rep.Audit != nil {
		printAudit(w, rep.Audit)
	}
	fmt.Fprintf(w, "recommendations for %d subjects (not recommended: %v); outputs in %s\n", rep.Recommended, rep.NotRecommended, rep.Output)
	return nil
}

func printEval(w io.Writer, ev train.Eval, curve []train.CurvePoint) {
	fmt.Fprintf(w, "held out: %s\n", ev.Holdout)
	fmt.Fprintf(w, "  %-22s %9s %9s %9s %9s %9s\n", "model", "Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "coverage")
	row := func(name string, m train.Metrics) {
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
	delta, budgetEps, budgetDelta float64
	cfg                           train.Config
	eventTypes                    []string
	holdoutLast                   int
	holdoutFrac                   float64
	holdoutRandom                 bool
	baselineEpochs                float64
	curve, baselines, asJSON      bool
}

// mfReport is what veil train mf prints.
type mfReport struct {
	Input        string             `json:"input"`
	Subjects     int                `json:"subjects"`
	Items        int                `json:"items"`
	Interactions int                `json:"interactions"`
	Private      bool               `json:"private"`
	Spent        *spentJSON         `json:"spent"` // null: non-private
	Plan         train.Plan         `json:"plan"`
	Training     *train.Stats       `json:"training"`
	Eval         train.Eval         `json:"evaluation"`
	Curve        []train.CurvePoint `json:"curve,omitempty"`
	Ledger       string             `json:"ledger,omitempty"`
	Seconds      float64            `json:"seconds"`
	LoadSeconds  float64            `json:"load_seconds"`
}

type spentJSON struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

func newTrainMFCmd(env *Env) *cobra.Command {
	o := mfOptions{cfg: train.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "mf --in FILE --epsilon E --delta D",
		Short: "Train and evaluate on a plain interactions file and print the metrics and the spent (ε, δ)",
		Long: `Train DP matrix factorization on a CSV or Parquet file with columns
subject_id and item_id, and optionally event_time (orders the holdout),
weight and event_type (see --event-types); an events table of veil's
contract qualifies. --epsilon inf trains without privacy on the same code path. Each
subject's last --holdout-last interactions are held out; the model is
evaluated (Recall@K, NDCG@K, coverage) against popularity and, with
--baselines, the non-private model. --curve adds ε ∈ {1, 2, 4, 8, ∞}.

A private run is a DP release of the file's subjects: it is recorded in the
budget ledger given by --ledger (refused when it would exceed
--budget-epsilon). Use it on data you may train on, e.g. public data sets to
compare veil with other tools.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runTrainMF(cmd, env, &o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "interactions file (CSV or Parquet), path or URL")
	f.StringVar(&o.epsilon, "epsilon", "", "target ε, or inf for no privacy")
	f.StringSliceVar(&o.eventTypes, "event-types", nil, "keep only rows with these event_type values (default: all rows)")
	f.Float64Var(&o.delta, "delta", 0, "target δ (default: 1e-6 or below 1/subjects)")
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
	f.Float64Var(&o.baselineEpochs, "baseline-epochs", 10, "epochs of the non-private baseline")
	f.BoolVar(&o.curve, "curve", false, "privacy-utility curve over ε ∈ {1, 2, 4, 8, ∞}")
	f.StringVar(&o.curvePNG, "curve-png", "", "write the curve's plot to this PNG file")
	f.StringVar(&o.ledger, "ledger", "", "budget ledger URL (required for private runs)")
	f.Float64Var(&o.budgetEps, "budget-epsilon", 100, "total ε the ledger allows on this input")
	f.Float64Var(&o.budgetDelta, "budget-delta", 1e-5, "total δ the ledger allows on this input")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	return cmd
}

func runTrainMF(cmd *cobra.Command, env *Env, o *mfOptions) error {
	if o.in == "" || o.epsilon == "" {
		return usagef(fmt.Errorf("--in and --epsilon are required"))
	}
	eps, err := parseEpsilon(o.epsilon)
	if err != nil {
		return usagef(err)
	}
	budgetPolicy := budget.Policy{Epsilon: o.budgetEps, Delta: o.budgetDelta, Period: "total"}
	if err := budgetPolicy.Validate(); err != nil {
		return usagef(fmt.Errorf("--budget-epsilon, --budget-delta: %w", err))
	}
	if o.curvePNG != "" && !o.curve {
		return usagef(fmt.Errorf("--curve-png needs --curve"))
	}
	cfg := o.cfg
	cfg.Epsilon = eps
	ev := train.Evaluation{HoldoutLast: o.holdoutLast, HoldoutFraction: o.holdoutFrac, HoldoutRandom: o.holdoutRandom, Baselines: o.baselines, BaselineEpochs: o.baselineEpochs, Seed: cfg.Seed}
	if o.curve {
		ev.Curve, ev.CurveEpsilons = true, []float64{1, 2, 4, 8}
	}
	if (ev.HoldoutLast < 1 && !(ev.HoldoutFraction > 0 && ev.HoldoutFraction < 1)) || ev.HoldoutLast < 0 {
		return usagef(fmt.Errorf("--holdout-last %d, --holdout-fraction %v: want holdout-last >= 1 or a fraction in (0, 1)", ev.HoldoutLast, ev.HoldoutFraction))
	}
	ctx := cmd.Context()
	start := time.Now()
	d, err := train.ReadFile(ctx, o.in, o.eventTypes, env.urlOptions())
	if err != nil {
		return err
	}
	rep := &mfReport{Input: o.in, Subjects: len(d.Subjects), Items: len(d.Items), Interactions: d.Interactions(), Private: cfg.Private(), LoadSeconds: time.Since(start).Seconds()}
	cfg.Delta = o.delta
	if cfg.Delta == 0 {
		cfg.Delta = math.Min(1e-6, 0.1/float64(len(d.Subjects)))
	}
	plan, err := cfg.MakePlan()
	if err != nil {
		return usageIfConfig(err)
	}
	var curve []train.Plan
	if ev.Curve {
		if curve, err = train.CurvePlans(cfg, ev.CurveEpsilons); err != nil {
			return usageIfConfig(err)
		}
	}
	rep.Plan = plan
	if cfg.Private() || len(curve) > 0 {
		if o.ledger == "" {
			return usagef(fmt.Errorf("a private run is a DP release of the input's subjects and spends budget: pass --ledger URL (and --budget-epsilon)"))
		}
		store, err := dataset.OpenStore(ctx, o.ledger, env.urlOptions())
		if err != nil {
			return err
		}
		name, err := budget.Identity(ctx, o.in, "", env.urlOptions())
		if err != nil {
			return err
		}
		req := budget.Request{Dataset: name, RunID: uuid.Must(uuid.NewV7()).String(), Job: "train mf", LogicalDate: time.Now().UTC(), Accountant: cfg.Accountant,
			Policy: budgetPolicy}
		if cfg.Private() {
			req.Events = append(req.Events, plan.Event())
		}
		for _, p := range curve {
			req.Events = append(req.Events, p.Event())
		}
		rec, err := budget.Open(store, "").Spend(ctx, req)
		if err != nil {
			return err
		}
		rep.Ledger = o.ledger
		if cfg.Private() {
			rep.Spent = &spentJSON{Epsilon: plan.Epsilon, Delta: plan.Delta}
		}
		env.logger().Info("budget spent", "dataset", name, "epsilon", rec.Epsilon, "delta", rec.Delta, "run_id", rec.RunID)
	}
	tr, test := d.Split(ev.HoldoutLast, ev.HoldoutFraction, ev.HoldoutRandom, ev.Seed)
	x, err := train.RunExperiment(ctx, tr, test, cfg, plan, ev, curve, train.FitOptions{Log: env.logger()}, 0)
	if err != nil {
		return err
	}
	rep.Training, rep.Eval, rep.Curve = x.Stats, x.Eval, x.Curve
	rep.Seconds = time.Since(start).Seconds()
	if o.curvePNG != "" {
		if err := os.WriteFile(o.curvePNG, x.CurvePNG, 0o644); err != nil {
			return err
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := env.Stdout
	fmt.Fprintf(w, "%s: %d subjects, %d items, %d interactions\n", o.in, rep.Subjects, rep.Items, rep.Interactions)
	if rep.Spent != nil {
		fmt.Fprintf(w, "spent (ε %.4g, δ %.3g) per subject: σ %.4g, q %.3g, %d steps (%s)\n", plan.Epsilon, plan.Delta, plan.NoiseMultiplier, plan.SamplingRate, plan.Steps, plan.Accountant)
	} else {
		fmt.Fprintln(w, "trained WITHOUT differential privacy")
	}
	fmt.Fprintf(w, "training: %.2fs, %.0f subjects/s, %.2fs per epoch\n", x.Stats.Seconds, x.Stats.SubjectsPerSec, x.Stats.SecondsPerEp)
	printEval(w, rep.Eval, rep.Curve)
	return nil
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
