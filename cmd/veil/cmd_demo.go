package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
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
has so far on it: a streaming, column-projected scan of the events that writes
an event summary as a committed output. It prints where everything is.`,
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
	sum, err := summarizeEvents(ctx, store, "shop/events")
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
	fmt.Fprintf(env.Stdout, "\nscanned %d events of %d subjects (%s .. %s)\n", sum.Events, sum.Subjects, sum.First, sum.Last)
	types := make([]string, 0, len(sum.EventTypes))
	for t := range sum.EventTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(env.Stdout, "  %-12s %d\n", t, sum.EventTypes[t])
	}
	fmt.Fprintf(env.Stdout, "\noutputs:\n  shop           %s/shop\n  event summary  %s\n", store.Location(), out.Location())
	return nil
}

type eventSummary struct {
	Events     int64            `json:"events"`
	Subjects   int              `json:"subjects"`
	First      string           `json:"first_event"`
	Last       string           `json:"last_event"`
	EventTypes map[string]int64 `json:"event_types"`
}

// summarizeEvents scans the projected columns of an events dataset on all
// cores and counts events by type and distinct subjects.
func summarizeEvents(ctx context.Context, s dataset.Store, key string) (*eventSummary, error) {
	keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: key}, dataset.Window{})
	if err != nil {
		return nil, err
	}
	sc, err := dataset.OpenScan(ctx, s, keys, dataset.EventsContract, "subject_id", "event_time", "event_type")
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var mu sync.Mutex
	sum := &eventSummary{EventTypes: map[string]int64{}}
	subjects := map[string]struct{}{}
	var lo, hi int64 = 1<<63 - 1, -1 << 63
	err = sc.Run(ctx, 2, func(_ int, _ dataset.Unit, b *dataset.Batch) error {
		types := b.Column("event_type").Str
		counts := make([]int64, len(types.Dict))
		for _, x := range types.Index {
			counts[x]++
		}
		times := b.Column("event_time").Int
		subj := b.Column("subject_id").Str
		mu.Lock()
		defer mu.Unlock()
		sum.Events += int64(b.Rows)
		for i, n := range counts {
			sum.EventTypes[types.Dict[i]] += n
		}
		for _, t := range times {
			lo, hi = min(lo, t), max(hi, t)
		}
		for _, id := range subj.Dict {
			subjects[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sum.Subjects = len(subjects)
	if sum.Events > 0 {
		sum.First = time.UnixMicro(lo).UTC().Format(time.RFC3339)
		sum.Last = time.UnixMicro(hi).UTC().Format(time.RFC3339)
	}
	return sum, nil
}
