package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

type demoOptions struct {
	Dir      string
	Subjects int
	Days     int
	Seed     uint64
}

func newDemoCmd(env *Env) *cobra.Command {
	opts := demoOptions{Dir: "veil-demo", Subjects: 2000, Days: 30, Seed: 1}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Generate a small shop into a local folder and run the pipeline on it",
		Long: `Generate a small synthetic shop into a local folder and run the pipeline on
it: a streaming scan of the events that writes an event summary, then the
nightly pipeline of configs/nightly.yaml through the job runner (veil run):
segmentation (consent-filtered features, k-means with k chosen by silhouette,
the cohort floor, noisy cohort sizes spent against the budget ledger, exports
for marketing), DP k-means, and DP training of recommendation factors with
its evaluation, privacy-utility curve (printed as a table), one-run privacy
audit and model card. Running it again is a no-op for the pipeline.
It prints where everything is.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), env, opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", opts.Dir, "local folder for the shop and the outputs")
	f.IntVar(&opts.Subjects, "subjects", opts.Subjects, "number of customers")
	f.IntVar(&opts.Days, "days", opts.Days, "days of events")
	f.Uint64Var(&opts.Seed, "seed", opts.Seed, "random seed")
	return cmd
}

func runDemo(ctx context.Context, env *Env, opts demoOptions) error {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return usagef(err)
	}
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Days, cfg.Seed = opts.Subjects, opts.Days, opts.Seed
	if err := runGenerate(ctx, env, generateOptions{Out: filepath.Join(dir, "shop"), Config: cfg, End: cfg.End.Format(time.DateOnly)}); err != nil {
		return err
	}
	store, err := dataset.NewFileStore(dir)
	if err != nil {
		return err
	}
	sum, err := scanEvents(ctx, dataset.Ref{Store: store, Key: "shop/events"}, dataset.Window{}, 2)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	out, err := dataset.NewOutput(ctx, store, "out/event-summary", nil, "veil "+Version)
	if err != nil {
		return err
	}
	if err := out.PutFile(ctx, "summary.json", append(data, '\n'), int64(len(sum.EventTypes))); err != nil {
		out.Abort(ctx)
		return err
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		out.Abort(ctx)
		return err
	}
	fmt.Fprintf(env.Stdout, "\nscanned %d events (%s .. %s)\n", sum.Events, sum.First, sum.Last)
	types := make([]string, 0, len(sum.EventTypes))
	for t := range sum.EventTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(env.Stdout, "  %-12s %d\n", t, sum.EventTypes[t])
	}
	// The nightly pipeline (configs/nightly.yaml) through the job runner:
	// segmentation with noisy sizes spent against the budget ledger, then DP
	// k-means, each step committed, the latest pointer switched at the end.
	spec := demoSpec(dir, opts.Subjects)
	fmt.Fprintln(env.Stdout)
	m := jobs.NewMetrics(spec.Name)
	res, err := jobs.Run(ctx, spec, jobs.Options{LogicalDate: cfg.End, URL: env.urlOptions(), Log: env.logger(), OnStep: m.Step, Getenv: env.Getenv, Version: Version})
	m.Finish(err == nil, time.Now())
	if err != nil {
		return err
	}
	if err := m.Write(spec.Metrics); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.Message)
	for _, st := range res.Steps {
		if r := st.Segment; r != nil {
			if err := printSegmentReport(env, r, false); err != nil {
				return err
			}
		}
		if r := st.Train; r != nil {
			if err := printTrainReport(env.Stdout, r, false); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(env.Stdout, "\noutputs:\n  shop           %s/shop\n  event summary  %s\n", store.Location(), out.Location())
	for _, st := range res.Steps {
		fmt.Fprintf(env.Stdout, "  %-14s %s\n", st.Step, st.Output)
	}
	fmt.Fprintf(env.Stdout, "  budget ledger  %s/ledger\n  run state      %s/state (lineage events in state/lineage, audit log in state/audit)\n  metrics        %s\n", store.Location(), store.Location(), spec.Metrics.Textfile)
	return nil
}

// demoSpec is configs/nightly.yaml for a shop under dir, with the
// privacy-utility curve of the training step on and a budget to pay for it.
func demoSpec(dir string, subjects int) *jobs.Spec {
	floor := segment.Floor{MinSize: max(20, subjects/40), Small: "merge"}
	// One budget for the shop's subjects, whatever step spends it.
	ledger := &budget.Config{Ledger: filepath.Join(dir, "ledger"), Policy: budget.Policy{Epsilon: 40, Delta: 1e-5, Period: "month"}}
	step := func(name, out string) *segment.Config {
		c := segment.DefaultConfig()
		c.Events = filepath.Join(dir, "shop", "events")
		c.Output = filepath.Join(dir, "out", out)
		c.Floor, c.NoisySizes, c.Budget = floor, 5, ledger
		return &c
	}
	cohorts := step("cohorts", "cohorts")
	cohorts.KMeans.K, cohorts.KMeans.KMin, cohorts.KMeans.KMax = "auto", 3, 8
	dp := step("cohorts-dp", "cohorts-dp")
	dp.KMeans.K = "5"
	dp.Privacy = &segment.DPConfig{Epsilon: 1, Delta: 1e-6, Iterations: 6, ClipRadius: 1.5, Accountant: "pld"}
	recs := train.DefaultJobConfig()
	recs.Events, recs.Output, recs.Budget = filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out", "models"), ledger
	// The shop's public product list fixes the released item ids.
	recs.Catalog = filepath.Join(dir, "shop", "catalog")
	recs.Model.Epsilon, recs.Evaluation.Curve = 8, true
	audit := train.DefaultAuditConfig()
	audit.Canaries = 500
	recs.Evaluation.PrivacyAudit = &audit
	return &jobs.Spec{
		Name: "nightly", State: filepath.Join(dir, "state"),
		Lock:    jobs.LockSpec{TTL: 10 * time.Minute},
		Retries: jobs.RetrySpec{Attempts: 1, Backoff: time.Second},
		Metrics: jobs.MetricsSpec{Textfile: filepath.Join(dir, "veil.prom")},
		Steps: []jobs.StepSpec{
			{Name: "cohorts", Segment: cohorts},
			{Name: "cohorts-dp", DependsOn: []string{"cohorts"}, Segment: dp},
			{Name: "recs", DependsOn: []string{"cohorts-dp"}, Train: &recs},
		},
	}
}
