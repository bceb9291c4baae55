package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
)

func newBudgetCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "The privacy budget ledger",
	}
	var (
		ledgerURL, date, policyFile string
		policy                      budget.Policy
		asJSON                      bool
	)
	show := &cobra.Command{
		Use:   "show DATASET",
		Short: "Print the ε and δ spent on a dataset, per run, and what remains",
		Long: `Print the privacy budget spent on DATASET in the ledger at --ledger, per
run. DATASET is any spelling of the events table (a path, a file:// or s3://
URL) or of a table prepared from it: the ledger identity it resolves to (the
identity its manifest carries, else its canonical URL) is shown, else the
name as given (a budget.dataset a job declared). With
--epsilon and --delta (and --period), the period that --date falls in is
shown against that budget, composed with RDP; without them, everything spent,
by basic composition. A release charges every period its data window
overlaps (the job's window_days, or the policy's retention); the runs listed
are those that charge the period shown, and a table gives every period's
spend. With --policy FILE, the budget the data steward's policy sets for
DATASET gives the ledger (unless --ledger) and the ε, δ and period (unless
--epsilon and --delta).`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day := time.Now().UTC()
			if date != "" {
				var err error
				if day, err = time.Parse(time.DateOnly, date); err != nil {
					return usagef(fmt.Errorf("--date %q is not a date (YYYY-MM-DD)", date))
				}
			}
			var p *budget.Policy
			setBy := ""
			if policy.Epsilon != 0 || policy.Delta != 0 {
				if err := policy.Validate(); err != nil {
					return usagef(err)
				}
				p = &policy
			}
			if policyFile != "" || env.Getenv(privacy.PolicyEnv) != "" {
				// The policy's budget of the table (the pinned policy's
				// when the deployment pins one): its ledger and, unless the
				// flags say otherwise, its ε, δ and period.
				b, err := release.Resolve(cmd.Context(), args[0], nil, policyFile, env.urlOptions())
				if err != nil {
					return err
				}
				if ledgerURL == "" {
					ledgerURL = b.Ledger
				}
				if p == nil {
					p = &b.Policy
					policy = b.Policy
				}
				setBy = fmt.Sprintf("%s (ε %g, δ %g per %s in %s)", release.SetByNote(b.SetBy), b.Epsilon, b.Delta, cmp.Or(b.Period, "total"), b.Ledger)
			}
			if ledgerURL == "" {
				return usagef(errors.New("--ledger is required (or --policy, a policy that sets the table's budget)"))
			}
			store, err := open.Store(cmd.Context(), ledgerURL, env.urlOptions())
			if err != nil {
				return err
			}
			ledger := budget.Open(store, "")
			// The identity the spenders charge (budget.Identity), else the
			// name as given: a declared budget.dataset, or a key recorded
			// before identities.
			names := []string{args[0]}
			if id, err := budget.Identity(cmd.Context(), args[0], "", env.urlOptions()); err == nil && id != args[0] {
				names = []string{id, args[0]}
			}
			var st budget.Status
			for _, name := range names {
				if st, err = ledger.Status(cmd.Context(), name, p, day); err != nil {
					return err
				}
				if st.Records > 0 {
					break
				}
			}
			if st.Records == 0 {
				st.Dataset = names[0]
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			if st.Records == 0 {
				fmt.Fprintf(env.Stdout, "nothing recorded: the ledger %s holds no spend on %s (identity %s)\n", ledgerURL, args[0], st.Dataset)
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "identity\t%s\n", st.Dataset)
			if st.Dataset != args[0] {
				fmt.Fprintf(tw, "asked as\t%s\n", args[0])
			}
			if setBy != "" {
				fmt.Fprintf(tw, "budget set by\t%s\n", setBy)
			}
			fmt.Fprintf(tw, "period\t%s\n", st.Period)
			fmt.Fprintf(tw, "spent\tε %s at δ %s\n", num(st.Spent), num(st.Delta))
			if st.Remaining != nil {
				fmt.Fprintf(tw, "budget\tε %s at δ %s per %s\nremaining\tε %s\n", num(p.Epsilon), num(p.Delta), p.Period, num(*st.Remaining))
			}
			fmt.Fprintln(tw, "\nrun\tlogical date\tperiods charged\trecorded\taccountant\tε\tδ\tevents")
			for _, r := range st.Runs {
				periods := strings.Join(r.Periods, ",")
				if periods == "" {
					periods = r.Period
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.RunID, r.LogicalDate, periods, r.RecordedAt.Format(time.RFC3339), r.Accountant, num(r.Epsilon), num(r.Delta), len(r.Events))
			}
			if p != nil && p.Period != "total" {
				// A release charges every period its data window overlaps.
				fmt.Fprintln(tw, "\nper period\truns\tspent ε\tremaining ε")
				for _, ps := range st.Periods {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", ps.Period, ps.Runs, num(ps.Spent), num(*ps.Remaining))
				}
			}
			return tw.Flush()
		}),
	}
	f := show.Flags()
	f.StringVar(&ledgerURL, "ledger", "", "URL of the budget ledger (required without --policy)")
	f.StringVar(&date, "date", "", "a day in the period to show (default today)")
	f.Float64Var(&policy.Epsilon, "epsilon", 0, "budget ε per period")
	f.Float64Var(&policy.Delta, "delta", 0, "budget δ")
	f.StringVar(&policy.Period, "period", "total", "budget period: total, year, quarter, month, week or day")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&policyFile, "policy", "", "policy file whose budget of DATASET gives the ledger and the ε, δ and period defaults")
	cmd.AddCommand(show)
	return cmd
}
