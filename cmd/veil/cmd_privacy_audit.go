package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

// newPrivacyAuditCmd is veil privacy audit; name is "audit", or "privacy"
// for veil audit privacy, its old name, kept hidden for existing scripts
// ("audit" alone names the audit log; see docs/glossary.md).
func newPrivacyAuditCmd(env *Env, name string) *cobra.Command {
	var configFile, segmentFile, date string
	var asJSON, whiteBox bool
	var subjects, dim, draws int
	var countsDelta float64
	ac := mf.DefaultAuditConfig()
	wc := mf.DefaultWhiteBoxConfig()
	sc := segment.DefaultWhiteBoxConfig()
	cmd := &cobra.Command{
		Use:   name + " --config FILE --logical-date D [--white-box] | --segment-config FILE --white-box",
		Short: "Privacy audit: an empirical lower bound on a job's ε, and faults",
		Long: `A privacy audit tests a DP release empirically; it is not the audit log
(veil audit verify).

Without --white-box: the one-run black-box privacy audit (Steinke, Nasr and
Jagielski 2023) of a training job's settings on its data: --canaries
subjects, each with its own new items, are each included with probability ½;
one model is trained with the job's settings; the auditor guesses which
canaries were in from their scores, and the correct guesses give a lower
bound on ε at --confidence, loose by design. A loss-threshold
membership-inference attack gives an AUC (0.5 is a coin flip). A lower bound
above the proven ε exits 1.

With --white-box and --config: the white-box privacy audit of DP-SGD (Nasr et al.
2023) on the real trainer: --canaries Dirac canaries (half present, by a
secure coin) go through the trainer's sampler and clipping; every step's
noisy update is observed. The noise multiplier, the sampling rate and the
clipped contribution are estimated with confidence intervals, and the ε of
the least private parameters in the --confidence region, from the PLD
accountant, is the lower bound. A parameter off the plan beyond its interval
(noise below plan, clipping skipped, sampling above plan, noise carried over
or growing across steps, non-Gaussian noise) exits 1 and names the fault;
--false-alarm bounds the chance that correct code fails.

Either privacy audit of a training job runs the job's model once more on its data: it spends
budget like the job, before any data is read, and its result is for the
data steward only (print it to a steward-only place).

With --white-box and --segment-config: the white-box privacy audits of a segment
job's DP k-means (a canary through the clipping and FitDP, --runs runs) and
of its noisy cohort sizes (--draws draws of the discrete Gaussian, a χ² test
against its exact pmf), on public synthetic rows: no data read, nothing
spent.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			if segmentFile != "" {
				if !whiteBox || configFile != "" {
					return usagef(errors.New("--segment-config goes with --white-box and without --config"))
				}
				cfg, err := segment.LoadConfig(segmentFile)
				if err != nil {
					return usageIfConfig(err)
				}
				sc.Confidence, sc.FalseAlarm = wc.Confidence, wc.FalseAlarm
				reps, err := segment.AuditReleases(cmd.Context(), cfg, sc, subjects, dim, draws, countsDelta, 1)
				if err != nil {
					return usageIfConfig(err)
				}
				var errs []error
				for _, r := range reps {
					errs = append(errs, r.Err())
				}
				printReports(env, asJSON, reps)
				return errors.Join(errs...)
			}
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			cfg, err := train.LoadJobConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			if whiteBox {
				wc.Canaries, wc.Confidence = ac.Canaries, ac.Confidence
				if !cmd.Flags().Changed("canaries") {
					wc.Canaries = mf.DefaultWhiteBoxConfig().Canaries
				}
				rep, _, err := train.RunWhiteBoxAudit(cmd.Context(), cfg, wc, day, env.urlOptions(), env.logger())
				if rep != nil {
					printReports(env, asJSON, []*audit.Report{rep})
				}
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
	f.StringVar(&segmentFile, "segment-config", "", "segment job file, with --white-box (see configs/segment-dp.yaml)")
	f.StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	f.BoolVar(&whiteBox, "white-box", false, "the white-box privacy audit (Nasr et al. 2023): tight, and flags faults")
	f.IntVar(&ac.Canaries, "canaries", ac.Canaries, "canary subjects m (white-box default 4000)")
	f.IntVar(&ac.CanaryItems, "canary-items", ac.CanaryItems, "interactions (new items) per canary (one-run audit)")
	f.IntVar(&ac.Guesses, "guesses", ac.Guesses, "guesses r (0: m/5) (one-run audit)")
	f.Float64Var(&ac.Confidence, "confidence", ac.Confidence, "confidence of the lower bound")
	f.Float64Var(&wc.FalseAlarm, "false-alarm", wc.FalseAlarm, "chance that correct code fails a white-box check (all checks together)")
	f.IntVar(&sc.Runs, "runs", sc.Runs, "DP k-means runs with the canary (--segment-config)")
	f.IntVar(&subjects, "subjects", 2000, "synthetic rows of the DP k-means audit (--segment-config)")
	f.IntVar(&dim, "features", 8, "features of the synthetic rows (--segment-config)")
	f.IntVar(&draws, "draws", 100000, "draws of the noisy sizes' discrete Gaussian (--segment-config)")
	f.Float64Var(&countsDelta, "delta", 1e-6, "δ of the noisy sizes' bound when the segment job has no privacy section")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func printReports(env *Env, asJSON bool, reps []*audit.Report) {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if len(reps) == 1 {
			enc.Encode(reps[0])
		} else {
			enc.Encode(reps)
		}
		return
	}
	for _, r := range reps {
		printReport(env.Stdout, r)
	}
}

func printReport(w io.Writer, r *audit.Report) {
	fmt.Fprintf(w, "white-box privacy audit of %s\n  method: %s\n", r.Mechanism, r.Method)
	fmt.Fprintf(w, "  proven ε %.4g, empirical lower bound %.4g (%.2f of it) at %.0f%% confidence, δ %g; %d releases, %d runs, %d noise values, %.1fs\n",
		r.ProvenEpsilon, r.EpsilonLowerBound, r.Tightness(), 100*r.Confidence, r.Delta, r.Releases, r.Runs, r.Observations, r.Seconds)
	for _, e := range r.Estimates {
		fmt.Fprintf(w, "  %-22s %.5g  [%.5g, %.5g]  plan %.5g\n", e.Name, e.Value, e.Lo, e.Hi, e.Plan)
	}
	for _, c := range r.Checks {
		mark := "ok  "
		if c.Failed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-32s p %-9.3g %s\n", mark, c.Name, c.PValue, c.Detail)
	}
}

func printAudit(w io.Writer, r *mf.AuditResult) {
	proven := "∞ (no DP)"
	if r.ProvenEpsilon != nil {
		proven = fmt.Sprintf("%.4g", *r.ProvenEpsilon)
	}
	fmt.Fprintf(w, "privacy audit: %d canaries (%d included), %d guesses, %d right\n", r.Canaries, r.Included, r.Guesses, r.Correct)
	fmt.Fprintf(w, "empirical ε lower bound %.3g at %.0f%% confidence (δ %g); proven ε %s\n", r.EpsilonLowerBound, 100*r.Confidence, r.Delta, proven)
	fmt.Fprintf(w, "membership inference (loss threshold): AUC %.3f over %d members and %d non-members\n", r.MembershipAUC, r.Members, r.NonMembers)
	if r.Violation {
		fmt.Fprintln(w, "VIOLATION: the lower bound exceeds the proven ε")
	}
}
