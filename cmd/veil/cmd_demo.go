package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
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
nightly pipeline of configs/nightly.yaml, exactly as veil run
configs/nightly.yaml --logical-date 2026-11-27 runs it from the folder that
holds veil-demo (--dir moves its veil-demo/ paths):
segmentation (consent-filtered features, k-means with k chosen by silhouette,
the cohort floor, noisy cohort sizes spent against the budget ledger, exports
for marketing), DP k-means, and DP training of recommendation factors with
its evaluation against popularity and a non-private model, and a model
card. Running it again, or veil run of the same spec and date, is a no-op
for the pipeline.
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
	// The steward's policy (configs/policy.yaml) next to the shop, where
	// the steps of configs/nightly.yaml read it: it sets the shop's
	// privacy budget.
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), demoText(configs.Policy, opts.Dir), 0o644); err != nil {
		return fmt.Errorf("writing the demo's policy: %w", err)
	}
	// The nightly pipeline (configs/nightly.yaml) through the job runner:
	// segmentation with noisy sizes spent against the budget ledger, DP
	// k-means and DP training, each step committed, the latest pointer
	// switched at the end.
	spec, err := demoSpec(opts.Dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout)
	m := jobs.NewMetrics(spec.Name)
	// The demo is its own data steward: it pins the policy it wrote
	// (VEIL_POLICY), as a deployment pins the steward's.
	pinned := filepath.Join(dir, "policy.yaml")
	getenv := func(k string) string {
		if k == privacy.PolicyEnv {
			return pinned
		}
		return env.Getenv(k)
	}
	uo := env.urlOptions()
	uo.Getenv = getenv
	res, err := jobs.Run(ctx, spec, jobs.Options{LogicalDate: cfg.End, URL: uo, Log: env.logger(), OnStep: m.Step, Getenv: getenv, Version: Version})
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
	fmt.Fprintf(env.Stdout, "  policy         %s/policy.yaml (the data steward's: it sets the privacy budget)\n  budget ledger  %s/ledger\n  run state      %s/state (lineage events in state/lineage, audit log in state/audit)\n  metrics        %s\n", store.Location(), store.Location(), store.Location(), spec.Metrics.Textfile)
	return nil
}

// demoSpec is configs/nightly.yaml, exactly, so that veil run
// configs/nightly.yaml after the demo finds the date done (same spec, same
// hash, same relative paths). Only when --dir is not veil-demo are the
// spec's veil-demo/ paths moved to it.
func demoSpec(dirFlag string) (*jobs.Spec, error) {
	return jobs.ParseSpec("configs/nightly.yaml", demoText(configs.Nightly, dirFlag))
}

// demoText is a shipped file of the demo (configs/nightly.yaml,
// configs/policy.yaml) with its veil-demo/ paths moved to --dir.
func demoText(file []byte, dirFlag string) []byte {
	text := string(file)
	if d := filepath.ToSlash(filepath.Clean(dirFlag)); d != "veil-demo" {
		text = strings.ReplaceAll(text, " veil-demo/", " "+d+"/")
	}
	return []byte(text)
}
