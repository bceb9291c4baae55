package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/jobs/access"
	"github.com/veil-privacy/veil/lineage"
)

// subjectOptions are the flags of veil subject report.
type subjectOptions struct {
	Spec, Subject, Date, KeyFile string
	JSON, ConfirmErasure         bool
}

func newSubjectCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "subject", Short: "Answer a data subject's requests (steward tools)"}
	var opts subjectOptions
	report := &cobra.Command{
		Use:   "report --spec FILE --subject TOKEN [--logical-date D] [--json]",
		Short: "A subject's access report: consent, outputs, cohort, recommendations and why, releases",
		Long: `Build the access report of one pseudonymous subject of a pipeline (GDPR
Art. 15): its consent state per purpose as of --logical-date (default today)
with the records that decided it; the completed runs and outputs whose
contributors filter holds it (as veil lineage impact finds them) with the
(ε, δ) the ledger charged each for its DP releases; the cohort it is in with
that cohort's explanation; its recommendations with their reasons.

It is a steward tool: it reads exact, personal data, and appends who ran it
(VEIL_PRINCIPAL, else the OS user) to the pipeline's audit log. The
contributors filters are keyed: --steward-key-file, $VEIL_STEWARD_KEY_FILE
or $VEIL_STEWARD_KEY. A subject who asked for erasure gets no report (exit
3), except --confirm-erasure, which only confirms whether it is erased.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runSubjectReport(cmd.Context(), env, opts)
		}),
	}
	f := report.Flags()
	f.StringVar(&opts.Spec, "spec", "", "pipeline spec (see configs/nightly.yaml)")
	f.StringVar(&opts.Subject, "subject", "", "the subject's pseudonymous token")
	f.StringVar(&opts.Date, "logical-date", "", "consent as of this date YYYY-MM-DD (default: today, UTC)")
	f.StringVar(&opts.KeyFile, "steward-key-file", "", "file of the steward key that keys the contributors filters (default $VEIL_STEWARD_KEY_FILE)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON instead of Markdown")
	f.BoolVar(&opts.ConfirmErasure, "confirm-erasure", false, "only confirm whether the subject is erased")
	cmd.AddCommand(report)
	return cmd
}

// runSubjectReport builds and prints a subject access report.
func runSubjectReport(ctx context.Context, env *Env, opts subjectOptions) error {
	if opts.Spec == "" || opts.Subject == "" {
		return usagef(errors.New("--spec and --subject are required"))
	}
	day := time.Now().UTC()
	if opts.Date != "" {
		var err error
		if day, err = time.Parse(time.DateOnly, opts.Date); err != nil {
			return usagef(fmt.Errorf("--logical-date %q is not a date (YYYY-MM-DD)", opts.Date))
		}
	}
	spec, err := jobs.LoadSpec(opts.Spec)
	if err != nil {
		return err
	}
	key, err := lineage.LoadStewardKey(opts.KeyFile, env.Getenv)
	if err != nil {
		return err
	}
	rep, err := access.Build(ctx, spec, access.Options{Subject: opts.Subject, LogicalDate: day, ConfirmErasure: opts.ConfirmErasure,
		Principal: lineage.Principal(env.Getenv), StewardKey: key, URL: env.urlOptions()})
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = env.Stdout.Write(rep.Markdown())
	return err
}
