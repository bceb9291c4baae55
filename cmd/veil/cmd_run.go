package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/report"
)

type runOptions struct {
	date        string
	plan, force bool
	asJSON      bool
}

func newRunCmd(env *Env) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run SPEC --logical-date D",
		Short: "Run a pipeline for a logical date (for cron, Kubernetes CronJob, Airflow)",
		Long: `Run the pipeline of SPEC (see configs/nightly.yaml) for a logical date.

The run takes a lease lock for (pipeline, date); resumes an unfinished
attempt of the same spec from its last completed step; runs the remaining
steps in dependency order; switches the date's latest pointer only when every
step committed; and writes metrics. A date already completed with the same
spec is a no-op unless --force, which makes a new run that supersedes it.
--plan prints the steps, what they read and write and the DP releases they
plan, without reading data.

Exit codes: 0 success or no-op, 1 runtime failure, 2 invalid usage or spec,
3 refused by policy (consent, PII guard, budget), 4 another run holds the
lock for this pipeline and date.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runPipeline(cmd.Context(), env, args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.date, "logical-date", "", "logical date YYYY-MM-DD (required unless --plan)")
	f.BoolVar(&o.plan, "plan", false, "print what would run, without reading data")
	f.BoolVar(&o.force, "force", false, "run a completed date again")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return cmd
}

func runPipeline(ctx context.Context, env *Env, file string, o runOptions) error {
	day, err := parseLogicalDate(o.date, o.plan)
	if err != nil {
		return usagef(err)
	}
	spec, err := jobs.LoadSpec(file)
	if err != nil {
		return usagef(err)
	}
	if o.plan {
		p, err := jobs.MakePlan(spec)
		if err != nil {
			return usagef(err)
		}
		if o.asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		}
		fmt.Fprintf(env.Stdout, "pipeline %s\n", p.Job)
		for i, s := range p.Steps {
			fmt.Fprintf(env.Stdout, "%d. %s", i+1, s.Step)
			if len(s.DependsOn) > 0 {
				fmt.Fprintf(env.Stdout, " (after %s)", strings.Join(s.DependsOn, ", "))
			}
			fmt.Fprintf(env.Stdout, "\n   reads    %s\n   purposes %s\n   writes   %s\n", strings.Join(s.Reads, "; "), strings.Join(s.Purposes, ", "), s.Writes)
			for _, r := range s.Releases {
				fmt.Fprintf(env.Stdout, "   releases %s\n", r)
			}
			if s.Epsilon > 0 {
				fmt.Fprintf(env.Stdout, "   spends   ε %.4g (its releases composed)\n", s.Epsilon)
			}
			if s.Budget != "" {
				fmt.Fprintf(env.Stdout, "   budget   %s\n", s.Budget)
			}
		}
		for _, c := range p.Charges {
			fmt.Fprintf(env.Stdout, "charge: the run spends ε %.4g at δ %.4g of the budget of %s in %s (ε %.4g per %s, set by the %s), one ledger record for steps %s, before any data is read\n",
				c.Epsilon, c.Delta, c.Dataset, c.Ledger, c.Budget.Epsilon, cmp.Or(c.Budget.Period, "total"), c.SetBy, strings.Join(c.Steps, ", "))
			switch b := (release.Budget{SetBy: c.SetBy}); {
			case !b.FromPolicy():
				fmt.Fprintf(env.Stdout, "   the policy sets no budgets: the job chose this budget, not the data steward\n")
			case !b.FromSteward():
				fmt.Fprintf(env.Stdout, "   no policy is pinned (%s unset): the job chose this policy and budget, not the data steward\n", privacy.PolicyEnv)
			}
			if c.Epsilon > c.Budget.Epsilon {
				fmt.Fprintf(env.Stdout, "   over budget: the run would be refused (exit 3) with nothing spent\n")
			}
		}
		return nil
	}
	log := env.logger().With("job", spec.Name, "logical_date", o.date)
	m := jobs.NewMetrics(spec.Name)
	var bar *progressbar.ProgressBar
	res, err := jobs.Run(ctx, spec, jobs.Options{
		LogicalDate: day, Force: o.force, URL: env.urlOptions(), Log: log,
		OnStep: m.Step,
		OnStart: func(i, n int, step string) {
			if bar == nil {
				bar = env.newBar(int64(n), spec.Name, false)
			}
			if bar != nil {
				bar.Describe(fmt.Sprintf("%s: step %s", spec.Name, step))
				bar.Set(i)
			}
		},
		Getenv: env.Getenv, Console: env.Stderr, Version: Version,
	})
	if err == nil {
		barFinish(bar)
	} else if bar != nil {
		fmt.Fprintln(env.Stderr)
	}
	m.Finish(err == nil, time.Now())
	if merr := m.Write(spec.Metrics); merr != nil {
		log.Warn("metrics not written", "error", merr.Error())
	}
	if err != nil {
		log.Error("run failed", "error", oneLine(err))
		return err
	}
	log.Info(res.Message, "run_id", res.RunID, "no_op", res.NoOp, "seconds", res.Seconds)
	if r := spec.Report; r != nil {
		// The spec's report option: the run's site, written once the run
		// (or an earlier one of the date) completed. A rerun, a no-op for
		// the pipeline, writes it again.
		w := env.Stdout
		if o.asJSON {
			w = env.Stderr
		}
		out := strings.ReplaceAll(r.Out, "{date}", day.Format(time.DateOnly))
		aud := report.Audience(cmp.Or(r.Audience, string(report.Steward)))
		if err := writeReport(ctx, env, w, spec, file, day, aud, out); err != nil {
			return fmt.Errorf("the run completed, but its report was not written: %w", err)
		}
	}
	res = publicResult(res)
	if o.asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintln(env.Stdout, res.Message)
	for _, s := range res.Steps {
		state := "ran"
		if s.Skipped {
			state = "done earlier"
		}
		fmt.Fprintf(env.Stdout, "  %-12s %-12s %s\n", s.Step, state, s.Output)
		if p := s.Pseudonymize; p != nil && !s.Skipped {
			fmt.Fprintf(env.Stdout, "    %d rows read, %d events of %d subjects (key %s)\n", p.Rows, p.Events, p.Subjects, p.KeyID)
		}
		if r := s.Train; r != nil && !s.Skipped {
			printCharge(env.Stdout, r.Charged)
			printGuarantee(env.Stdout, r.Guarantee)
			fmt.Fprintf(env.Stdout, "    steward report: %s\n", r.Steward)
		}
		if r := s.Segment; r != nil && !s.Skipped {
			if r.NotDP != "" {
				fmt.Fprintf(env.Stdout, "    %s\n", r.NotDP)
			}
			for _, p := range r.Profiles {
				size := fmt.Sprint(p.Size)
				if p.NoisySize != nil {
					size = fmt.Sprintf("about %d", *p.NoisySize)
				}
				fmt.Fprintf(env.Stdout, "    cohort %d (%s): %s\n", p.CohortID, size, p.Explanation)
			}
		}
	}
	return nil
}

// publicResult is a run's result as it may be printed (to the scheduler's
// logs, read by many): each DP step shows its public report only (the
// guarantee, the ledger's charge, noisy sizes, where the steward report
// is); the exact counts and the evaluation on the private holdout are in
// the steward report. Steps without a DP release keep their exact
// figures. res is not changed.
func publicResult(res *jobs.Result) *jobs.Result {
	pub := *res
	pub.Steps = slices.Clone(res.Steps)
	for i, st := range pub.Steps {
		pub.Steps[i] = st.Public()
	}
	return &pub
}

// parseLogicalDate checks --logical-date whenever it is given; it may be
// left out only with --plan (optional says so), which then returns the zero
// time.
func parseLogicalDate(s string, optional bool) (time.Time, error) {
	if s == "" {
		if optional {
			return time.Time{}, nil
		}
		return time.Time{}, errors.New("--logical-date is required")
	}
	day, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--logical-date %q is not a date (YYYY-MM-DD, such as 2026-11-27)", s)
	}
	return day, nil
}
