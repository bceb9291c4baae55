package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/train"
)

func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log of who ran what"}
	var asJSON bool
	verify := &cobra.Command{
		Use:   "verify URL",
		Short: "Check the audit log's hash chain and print its records",
		Long: `Check that no record of the audit log at URL (a pipeline's STATE/audit) was
edited, deleted, inserted or reordered: each record holds the SHA-256 of the
one before it. A broken chain exits 1 and names the first bad record; a clean
log exits 0.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			store, err := dataset.OpenStore(cmd.Context(), args[0], env.urlOptions())
			if err != nil {
				return err
			}
			recs, err := lineage.OpenAudit(store, "").Verify(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(recs)
			}
			fmt.Fprintf(env.Stdout, "audit log %s: %d records, chain intact\n", store.Location(), len(recs))
			for _, r := range recs {
				fmt.Fprintf(env.Stdout, "  %4d %s %-10s %-9s %-24s %s %s\n", r.Seq, r.Time.Format("2006-01-02T15:04:05Z"), r.Principal, r.Outcome, r.Job, r.LogicalDate, r.RunID)
			}
			return nil
		}),
	}
	verify.Flags().BoolVar(&asJSON, "json", false, "print the records as JSON")
	cmd.AddCommand(verify, newAuditPrivacyCmd(env))
	return cmd
}

func newAuditPrivacyCmd(env *Env) *cobra.Command {
	var configFile, date string
	var asJSON bool
	ac := train.DefaultAuditConfig()
	cmd := &cobra.Command{
		Use:   "privacy --config FILE --logical-date D",
		Short: "Audit a training job's privacy empirically in one training run",
		Long: `Run the one-run privacy audit (Steinke, Nasr and Jagielski 2023) of a
training job's settings on its data: --canaries subjects, each with its own
new items, are each included with probability ½; one model is trained with
the job's settings; the auditor guesses which canaries were in from their
scores, and the correct guesses give a lower bound on ε at --confidence. A
loss-threshold membership-inference attack on real subjects in and out of
that run gives an AUC (0.5 is a coin flip). The audit's training run spends
budget like the job. A lower bound above the proven ε means the trainer or
its accounting is broken: exit 1.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			cfg, err := train.LoadJobConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			res, _, err := train.RunAudit(cmd.Context(), cfg, ac, day, env.urlOptions(), env.logger())
			if res != nil {
				if asJSON {
					enc := json.NewEncoder(env.Stdout)
					enc.SetIndent("", "  ")
					enc.Encode(res)
				} else {
					printAudit(env.Stdout, res)
				}
			}
			return usageIfConfig(err)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "training job file (see configs/train.yaml)")
	f.StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	f.IntVar(&ac.Canaries, "canaries", ac.Canaries, "canary subjects m")
	f.IntVar(&ac.CanaryItems, "canary-items", ac.CanaryItems, "interactions (new items) per canary")
	f.IntVar(&ac.Guesses, "guesses", ac.Guesses, "guesses r (0: m/5)")
	f.Float64Var(&ac.Confidence, "confidence", ac.Confidence, "confidence of the lower bound")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func printAudit(w io.Writer, r *train.AuditResult) {
	proven := "∞ (no DP)"
	if r.ProvenEpsilon != nil {
		proven = fmt.Sprintf("%.4g", *r.ProvenEpsilon)
	}
	fmt.Fprintf(w, "privacy audit: %d canaries (%d included), %d guesses, %d right\n", r.Canaries, r.Included, r.Guesses, r.Correct)
	fmt.Fprintf(w, "empirical ε lower bound %.3g at %.0f%% confidence (δ %s); proven ε %s\n", r.EpsilonLowerBound, 100*r.Confidence, num(r.Delta), proven)
	fmt.Fprintf(w, "membership inference (loss threshold): AUC %.3f over %d members and %d non-members\n", r.MembershipAUC, r.Members, r.NonMembers)
	if r.Violation {
		fmt.Fprintln(w, "VIOLATION: the lower bound exceeds the proven ε")
	}
}
