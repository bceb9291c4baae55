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
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
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
		Long: `Generate a small synthetic shop into a local folder and run what the pipeline
has so far on it: a streaming scan of the events that writes an event
summary, then segmentation (consent-filtered features, k-means with k chosen
by silhouette, the cohort floor, noisy cohort sizes spent against the budget
ledger, exports for marketing). It prints where everything is.`,
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
	// Segmentation: consented features, k-means, the cohort floor, noisy
	// sizes spent against the budget ledger, exports for marketing.
	seg := segment.DefaultConfig()
	seg.Events = filepath.Join(dir, "shop", "events")
	seg.Output = filepath.Join(dir, "out", "segments")
	seg.KMeans.K, seg.KMeans.KMin, seg.KMeans.KMax = "auto", 3, 8
	seg.Floor.MinSize = max(20, opts.Subjects/40)
	seg.NoisySizes = 5
	seg.Budget = &segment.BudgetConfig{Ledger: filepath.Join(dir, "ledger"), Policy: budget.Policy{Epsilon: 10, Delta: 1e-6, Period: "month"}}
	fmt.Fprintln(env.Stdout)
	rep, err := segment.Run(ctx, seg, cfg.End, env.urlOptions(), env.logger())
	if err != nil {
		return usageIfConfig(err)
	}
	if err := printSegmentReport(env, rep, false); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\noutputs:\n  shop           %s/shop\n  event summary  %s\n  segments       %s\n  budget ledger  %s/ledger\n", store.Location(), out.Location(), rep.Output, store.Location())
	return nil
}
