package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/lineage"
)

func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log of who ran what",
		Long: `The audit log: one hash-chained record per run start, step, run end and
subject report, naming who ran it and what was read and written. Empirical
privacy audits of DP releases (a lower bound on ε) are veil privacy audit.`,
	}
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
			store, err := open.Store(cmd.Context(), args[0], env.urlOptions())
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
	// veil audit privacy is the old name of veil privacy audit: hidden, and
	// kept working (with a warning on stderr) for existing scripts.
	old := newPrivacyAuditCmd(env, "privacy")
	old.Hidden = true
	old.PreRun = func(cmd *cobra.Command, args []string) {
		env.logger().Warn("veil audit privacy is deprecated: use veil privacy audit")
	}
	cmd.AddCommand(verify, old)
	return cmd
}
