package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

func newBudgetCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "The privacy budget ledger",
	}
	var (
		ledgerURL, date string
		policy          budget.Policy
		asJSON          bool
	)
	show := &cobra.Command{
		Use:   "show DATASET",
		Short: "Print the ε and δ spent on a dataset, per run, and what remains",
		Long: `Print the privacy budget spent on DATASET (the name releases were recorded
under, usually the input's URL) in the ledger at --ledger, per run. With
--epsilon and --delta (and --period), the period that --date falls in is
shown against that budget, composed with RDP; without them, everything spent,
by basic composition.`,
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
			if policy.Epsilon != 0 || policy.Delta != 0 {
				if err := policy.Validate(); err != nil {
					return usagef(err)
				}
				p = &policy
			}
			store, err := dataset.OpenStore(cmd.Context(), ledgerURL, env.urlOptions())
			if err != nil {
				return err
			}
			st, err := budget.Open(store, "").Status(cmd.Context(), args[0], p, day)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "dataset\t%s\nperiod\t%s\n", st.Dataset, st.Period)
			fmt.Fprintf(tw, "spent\tε %s at δ %s\n", num(st.Spent), num(st.Delta))
			if st.Remaining != nil {
				fmt.Fprintf(tw, "budget\tε %s at δ %s per %s\nremaining\tε %s\n", num(p.Epsilon), num(p.Delta), p.Period, num(*st.Remaining))
			}
			fmt.Fprintln(tw, "\nrun\tlogical date\trecorded\taccountant\tε\tδ\tevents")
			for _, r := range st.Runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.RunID, r.LogicalDate, r.RecordedAt.Format(time.RFC3339), r.Accountant, num(r.Epsilon), num(r.Delta), len(r.Events))
			}
			return tw.Flush()
		}),
	}
	f := show.Flags()
	f.StringVar(&ledgerURL, "ledger", "", "URL of the budget ledger (required)")
	f.StringVar(&date, "date", "", "a day in the period to show (default today)")
	f.Float64Var(&policy.Epsilon, "epsilon", 0, "budget ε per period")
	f.Float64Var(&policy.Delta, "delta", 0, "budget δ")
	f.StringVar(&policy.Period, "period", "total", "budget period: total, year, quarter, month, week or day")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	show.MarkFlagRequired("ledger")
	cmd.AddCommand(show)
	return cmd
}
