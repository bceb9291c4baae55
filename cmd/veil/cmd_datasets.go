package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
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
	cmd.AddCommand(inspect)
	return cmd
}

func runInspect(ctx context.Context, env *Env, url string, asJSON bool) error {
	ref, err := dataset.ParseRef(ctx, url, env.urlOptions())
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
