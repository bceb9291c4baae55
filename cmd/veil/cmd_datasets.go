package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

func newDatasetsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datasets",
		Short: "Inspect datasets",
	}
	var asJSON bool
	inspect := &cobra.Command{
		Use:   "inspect URL",
		Short: "Print the schema, row groups, rows, bytes and date range of a Parquet file or prefix",
		Args:  exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.Context(), env, args[0], asJSON)
		}),
	}
	inspect.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var from, to string
	var workers int
	var scanJSON bool
	scan := &cobra.Command{
		Use:   "scan URL",
		Short: "Stream the events of a file or prefix and count them by type (a throughput check)",
		Long: `Stream the projected columns (subject_id, event_time, event_type) of the
events that URL names, row group by row group on all cores, and print counts,
the time range and the throughput. --from and --to select dt= partitions.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			w, err := parseWindow(from, to)
			if err != nil {
				return err
			}
			ref, err := open.Ref(cmd.Context(), args[0], env.urlOptions())
			if err != nil {
				return err
			}
			sum, err := scanEvents(cmd.Context(), ref, w, workers)
			if err != nil {
				return err
			}
			if scanJSON {
				return json.NewEncoder(env.Stdout).Encode(sum)
			}
			fmt.Fprintf(env.Stdout, "%d events (%s .. %s) in %.2fs: %.0f events/s, %.1f MB/s of files\n", sum.Events, sum.First, sum.Last, sum.Seconds, float64(sum.Events)/sum.Seconds, float64(sum.Bytes)/sum.Seconds/1e6)
			types := slices.Sorted(maps.Keys(sum.EventTypes))
			for _, t := range types {
				fmt.Fprintf(env.Stdout, "  %-12s %d\n", t, sum.EventTypes[t])
			}
			return nil
		}),
	}
	scan.Flags().StringVar(&from, "from", "", "first dt= partition to read (YYYY-MM-DD)")
	scan.Flags().StringVar(&to, "to", "", "last dt= partition to read (YYYY-MM-DD)")
	scan.Flags().IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "row groups decoded at once")
	docDefault(scan.Flags(), "workers", "the number of CPUs")
	scan.Flags().BoolVar(&scanJSON, "json", false, "print JSON")
	cmd.AddCommand(inspect, scan, newFilterCmd(env), newScanPIICmd(env))
	return cmd
}

func parseWindow(from, to string) (dataset.Window, error) {
	var w dataset.Window
	var err error
	if from != "" {
		if w.From, err = time.Parse(time.DateOnly, from); err != nil {
			return w, usagef(fmt.Errorf("--from %q is not a date (YYYY-MM-DD)", from))
		}
	}
	if to != "" {
		if w.To, err = time.Parse(time.DateOnly, to); err != nil {
			return w, usagef(fmt.Errorf("--to %q is not a date (YYYY-MM-DD)", to))
		}
	}
	if !w.From.IsZero() && !w.To.IsZero() && w.To.Before(w.From) {
		return w, usagef(fmt.Errorf("--to %s is before --from %s", to, from))
	}
	return w, nil
}

func runInspect(ctx context.Context, env *Env, url string, asJSON bool) error {
	ref, err := open.Ref(ctx, url, env.urlOptions())
	if err != nil {
		return err
	}
	in, err := dataset.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	return printInspection(env.Stdout, in)
}

func printInspection(w io.Writer, in *dataset.Inspection) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dataset\t%s\n", in.URL)
	if in.Committed != nil {
		fmt.Fprintf(tw, "committed\t%s\n", in.Committed.Format(time.RFC3339))
	}
	contract := in.Contract
	if contract == "" {
		contract = "(none of veil's v1 contracts)"
	}
	fmt.Fprintf(tw, "contract\t%s\n", contract)
	fmt.Fprintf(tw, "files\t%d\n", len(in.Files))
	fmt.Fprintf(tw, "row groups\t%d\n", in.RowGroups)
	fmt.Fprintf(tw, "rows\t%d\n", in.Rows)
	fmt.Fprintf(tw, "bytes\t%d (%.1f MiB)\n", in.Bytes, float64(in.Bytes)/(1<<20))
	if tr := in.TimeRange; tr != nil {
		fmt.Fprintf(tw, "time range\t%s .. %s (%s)\n", tr.Min.Format(time.RFC3339), tr.Max.Format(time.RFC3339), tr.Column)
	}
	fmt.Fprintln(tw, "schema\t")
	for _, c := range in.Schema {
		null := "required"
		if c.Nullable {
			null = "nullable"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Type, null)
	}
	return tw.Flush()
}

type eventSummary struct {
	Events     int64            `json:"events"`
	Files      int              `json:"files"`
	Bytes      int64            `json:"bytes"`
	First      string           `json:"first_event"`
	Last       string           `json:"last_event"`
	EventTypes map[string]int64 `json:"event_types"`
	Seconds    float64          `json:"seconds"`
}

// scanEvents streams the projected columns of an events dataset on workers
// goroutines and counts events by type. Memory is bounded by the row groups
// in flight, whatever the number of events.
func scanEvents(ctx context.Context, ref dataset.Ref, w dataset.Window, workers int) (*eventSummary, error) {
	start := time.Now()
	keys, err := dataset.Inputs(ctx, ref, w)
	if err != nil {
		return nil, err
	}
	s := ref.Store
	sc, err := dataset.OpenScan(ctx, s, keys, dataset.EventsContract, "subject_id", "event_time", "event_type")
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var mu sync.Mutex
	sum := &eventSummary{EventTypes: map[string]int64{}, Files: len(keys)}
	for _, f := range sc.Files {
		sum.Bytes += f.Object().Size()
	}
	var lo, hi int64 = 1<<63 - 1, -1 << 63
	err = sc.Run(ctx, workers, func(_ int, _ dataset.Unit, b *dataset.Batch) error {
		types := b.Column("event_type").Str
		counts := make([]int64, len(types.Dict))
		for _, x := range types.Index {
			counts[x]++
		}
		times := b.Column("event_time").Int
		var blo, bhi int64 = 1<<63 - 1, -1 << 63
		for _, t := range times {
			blo, bhi = min(blo, t), max(bhi, t)
		}
		mu.Lock()
		defer mu.Unlock()
		sum.Events += int64(b.Rows)
		for i, n := range counts {
			sum.EventTypes[types.Dict[i]] += n
		}
		lo, hi = min(lo, blo), max(hi, bhi)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sum.Events > 0 {
		sum.First = time.UnixMicro(lo).UTC().Format(time.RFC3339)
		sum.Last = time.UnixMicro(hi).UTC().Format(time.RFC3339)
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}
