package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/report"
)

type reportOptions struct {
	spec, date, out, audience string
}

func newReportCmd(env *Env) *cobra.Command {
	o := reportOptions{audience: string(report.Steward)}
	cmd := &cobra.Command{
		Use:   "report --spec FILE --logical-date D --out DIR [--audience marketing|steward]",
		Short: "Write a pipeline run as a static web site (HTML, CSS, SVG)",
		Long: `Write the run that completed a pipeline's logical date as a static web site
in DIR: a Run page (steps, durations, inputs and outputs, the lineage graph),
a Privacy page (steward build only: the budget ledger per dataset identity,
each release's mechanisms and charge, privacy audits, the audit log's status, how to
look up an erasure request's impact), a Model page (the model card; for the
steward its appendix, evaluation, privacy-utility curve and exposure) and a
Cohorts page (profiles in words, noisy sizes, plots, the export files and
datasheet). No script, nothing fetched from the network: open DIR/index.html
from disk or serve DIR from a static-website bucket.
--audience marketing builds the site from releases and the steps' public
reports only: no steward-only figure.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runReport(cmd.Context(), env, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.spec, "spec", "", "pipeline spec (required)")
	f.StringVar(&o.date, "logical-date", "", "logical date YYYY-MM-DD (required)")
	f.StringVar(&o.out, "out", "", "folder to write the site into (required)")
	f.StringVar(&o.audience, "audience", o.audience, "who reads the site: steward or marketing")
	return cmd
}

func runReport(ctx context.Context, env *Env, o reportOptions) error {
	if o.spec == "" || o.out == "" {
		return usagef(errors.New("--spec and --out are required"))
	}
	day, err := parseLogicalDate(o.date, false)
	if err != nil {
		return usagef(err)
	}
	aud, err := report.ParseAudience(o.audience)
	if err != nil {
		return usagef(err)
	}
	spec, err := jobs.LoadSpec(o.spec)
	if err != nil {
		return usagef(err)
	}
	return writeReport(ctx, env, env.Stdout, spec, o.spec, day, aud, o.out)
}

// writeReport collects and writes the site of (spec, day) for aud into
// out, and says on w where it is.
func writeReport(ctx context.Context, env *Env, w io.Writer, spec *jobs.Spec, specPath string, day time.Time, aud report.Audience, out string) error {
	start := time.Now()
	site, err := report.Collect(ctx, spec, day, report.Options{Audience: aud, URL: env.urlOptions(), SpecPath: specPath})
	if err != nil {
		return fmt.Errorf("collecting the report: %w", err)
	}
	files, err := report.Write(out, site)
	if err != nil {
		return err
	}
	var size int64
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(out, f)); err == nil {
			size += st.Size()
		}
	}
	fmt.Fprintf(w, "report (%s build) of %s for %s: %s (%d files, %d bytes, %.1f s)\n",
		aud, spec.Name, site.LogicalDate, filepath.Join(out, "index.html"), len(files), size, time.Since(start).Seconds())
	return nil
}
