package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/lineage"
)

// lineageFlags locate the lineage records: a store URL, or the pipeline
// spec whose records they are.
type lineageFlags struct{ store, spec string }

func (f *lineageFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.store, "store", "", "URL of the lineage records (a pipeline's STATE/lineage)")
	cmd.Flags().StringVar(&f.spec, "spec", "", "pipeline spec whose lineage records to read (instead of --store)")
}

func (f *lineageFlags) graph(ctx context.Context, env *Env) (*lineage.Graph, error) {
	url := f.store
	switch {
	case url != "" && f.spec != "":
		return nil, usagef(errors.New("give --store or --spec, not both"))
	case f.spec != "":
		spec, err := jobs.LoadSpec(f.spec)
		if err != nil {
			return nil, err
		}
		if url = spec.Lineage.Store; url == "" {
			url = dataset.ChildURL(spec.State, "lineage")
		}
	case url == "":
		return nil, usagef(errors.New("--store or --spec is required"))
	}
	store, err := open.Store(ctx, url, env.urlOptions())
	if err != nil {
		return nil, err
	}
	events, err := lineage.ReadEvents(ctx, store, "")
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no lineage events in %s", store.Location())
	}
	return lineage.BuildGraph(events), nil
}

func newLineageCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "lineage", Short: "Read the OpenLineage records: graph, output checks, erasure impact"}
	cmd.AddCommand(newLineageShowCmd(env), newLineageVerifyCmd(env), newLineageImpactCmd(env))
	return cmd
}

func newLineageShowCmd(env *Env) *cobra.Command {
	var lf lineageFlags
	var format string
	cmd := &cobra.Command{
		Use:   "show RUN_OR_DATASET",
		Short: "Print a run's or a dataset's upstream and downstream",
		Long: `Print what a run read and wrote, the pipeline run it belongs to, its steps,
and the runs upstream and downstream of it; or, for a dataset (a URL, path
or path suffix), the runs that wrote and read it. A run may be named by a
unique prefix of its id. --format dot prints a Graphviz graph instead
(veil lineage show RUN --format dot | dot -Tsvg > lineage.svg).`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "dot" {
				return usagef(fmt.Errorf("--format %q: want text or dot", format))
			}
			g, err := lf.graph(cmd.Context(), env)
			if err != nil {
				return err
			}
			if r, rerr := g.FindRun(args[0]); rerr == nil {
				if format == "dot" {
					g.WriteDot(env.Stdout, g.Neighbourhood(r))
					return nil
				}
				if p := g.Runs[r.Parent]; p != nil {
					g.WriteRun(env.Stdout, p)
				}
				g.WriteRun(env.Stdout, r)
				for _, c := range g.Children(r.RunID) {
					g.WriteRun(env.Stdout, c)
				}
				return nil
			}
			keys := g.FindDataset(args[0])
			if len(keys) == 0 {
				return usagef(fmt.Errorf("%q is neither a run nor a dataset in the lineage records", args[0]))
			}
			if format == "dot" {
				var runs []*lineage.RunNode
				for _, k := range keys {
					runs = append(runs, g.Producers(k)...)
					runs = append(runs, g.Consumers(k)...)
				}
				g.WriteDot(env.Stdout, runs)
				return nil
			}
			for _, k := range keys {
				g.WriteDataset(env.Stdout, k)
			}
			return nil
		}),
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "text or dot")
	return cmd
}

func newLineageVerifyCmd(env *Env) *cobra.Command {
	var lf lineageFlags
	cmd := &cobra.Command{
		Use:   "verify RUN",
		Short: "Check that a run's outputs still match their manifests' checksums",
		Long: `Read every output a completed run recorded and check each file against the
SHA-256 and size in the output's manifest. A pipeline run's outputs are
those of all its steps. Exit 0 when all match, 1 when any file is missing or
changed (the first is named).`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			g, err := lf.graph(cmd.Context(), env)
			if err != nil {
				return err
			}
			r, err := g.FindRun(args[0])
			if err != nil {
				return usagef(err)
			}
			lines, err := lineage.VerifyOutputs(cmd.Context(), r, env.urlOptions())
			fmt.Fprintf(env.Stdout, "run %s (%s):\n", r.RunID, r.Job)
			for _, l := range lines {
				fmt.Fprintf(env.Stdout, "  %s\n", l)
			}
			return err
		}),
	}
	lf.add(cmd)
	return cmd
}

func newLineageImpactCmd(env *Env) *cobra.Command {
	var lf lineageFlags
	var subject, keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "impact --subject TOKEN",
		Short: "List the runs and outputs that may contain a subject (erasure impact)",
		Long: `Test the subject's pseudonymous token against the contributors filter
(a Bloom filter) of every completed run and list the runs and outputs that
may hold the subject's data: what an erasure request must purge or
retrain. A run not listed certainly did not use the subject; a listed one
did, or is a false positive at the stated rate.

The filters are keyed (HMAC-SHA-256) and kept in the runs' steward reports:
testing a token needs the steward key the runs were made with, from
--steward-key-file, $VEIL_STEWARD_KEY_FILE or $VEIL_STEWARD_KEY (hex or
base64). A run made without a steward key keeps a random key of its own
beside its filter, in the steward report.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			if subject == "" {
				return usagef(errors.New("--subject is required"))
			}
			g, err := lf.graph(cmd.Context(), env)
			if err != nil {
				return err
			}
			key, err := lineage.LoadStewardKey(keyFile, env.Getenv)
			if err != nil {
				return err
			}
			hits, checked, missing, err := g.Impact(cmd.Context(), subject, key, env.urlOptions())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"subject": subject, "runs_checked": checked, "hits": hits, "filters_missing": missing})
			}
			fmt.Fprintf(env.Stdout, "subject %s: %d of %d runs may contain it\n", subject, len(hits), checked)
			for _, h := range hits {
				fmt.Fprintf(env.Stdout, "  run %s %s (logical date %s), false-positive rate %.2g\n", h.RunID, h.Job, h.LogicalDate, h.FPR)
				for _, o := range h.Outputs {
					fmt.Fprintf(env.Stdout, "    output %s\n", o)
				}
			}
			for _, m := range missing {
				fmt.Fprintf(env.Stdout, "  filter gone (output purged?): %s\n", m)
			}
			return nil
		}),
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&subject, "subject", "", "the subject's pseudonymous token")
	cmd.Flags().StringVar(&keyFile, "steward-key-file", "", "file of the steward key that keys the contributors filters (default $VEIL_STEWARD_KEY_FILE)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
