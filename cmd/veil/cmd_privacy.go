package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/privacy/accountant"
)

func newPrivacyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "privacy",
		Short: "Privacy accounting (ε for a DP-SGD schedule, noise for a target ε) and privacy audits",
	}
	var (
		acct                         string
		q, sigma, target, deltaValue float64
		steps                        int
		asJSON                       bool
	)
	epsilon := &cobra.Command{
		Use:   "epsilon",
		Short: "Print the ε that steps of the Poisson-subsampled Gaussian spend",
		Long: `Print the ε that --steps releases of the Gaussian mechanism with noise
multiplier --noise-multiplier on Poisson samples of rate --sampling-rate spend
at --delta, under add-or-remove-one neighbouring of subjects.

--accountant rdp: Rényi DP over dp_accounting's default orders (prints the
optimal order). --accountant pld: privacy loss distributions, tighter.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			r, err := accountant.Spent(acct, deltaValue, accountant.Event{
				Mechanism: accountant.SubsampledGaussian, SamplingRate: q, NoiseMultiplier: sigma, Count: steps,
			})
			if err != nil {
				return usagef(err)
			}
			if asJSON {
				return json.NewEncoder(env.Stdout).Encode(r)
			}
			if r.Order != 0 {
				_, err = fmt.Fprintf(env.Stdout, "ε = %.6g at δ = %s (%s, order %s)\n", r.Epsilon, num(r.Delta), r.Accountant, num(r.Order))
			} else {
				_, err = fmt.Fprintf(env.Stdout, "ε = %.6g at δ = %s (%s)\n", r.Epsilon, num(r.Delta), r.Accountant)
			}
			return err
		}),
	}
	calibrate := &cobra.Command{
		Use:   "calibrate",
		Short: "Print the smallest noise multiplier that meets a target ε",
		Long: `Print the smallest noise multiplier (to 1e-4 relative, rounded up) for which
--steps Poisson-subsampled Gaussian releases at --sampling-rate spend at most
--target-epsilon at --delta, and the ε it spends (never above the target).`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			c, err := accountant.Calibrate(acct, target, q, steps, deltaValue)
			if err != nil {
				return usagef(err)
			}
			if asJSON {
				return json.NewEncoder(env.Stdout).Encode(c)
			}
			_, err = fmt.Fprintf(env.Stdout, "noise multiplier %.6g (spends ε = %.6g at δ = %s, %s)\n", c.NoiseMultiplier, c.Epsilon, num(deltaValue), acct)
			return err
		}),
	}
	for _, c := range []*cobra.Command{epsilon, calibrate} {
		f := c.Flags()
		f.StringVar(&acct, "accountant", "rdp", "rdp or pld")
		f.Float64Var(&q, "sampling-rate", 0, "Poisson sampling rate q in (0, 1] (required)")
		f.IntVar(&steps, "steps", 0, "number of releases (required)")
		f.Float64Var(&deltaValue, "delta", 0, "δ in (0, 1) (required)")
		f.BoolVar(&asJSON, "json", false, "print JSON")
		c.MarkFlagRequired("sampling-rate")
		c.MarkFlagRequired("steps")
		c.MarkFlagRequired("delta")
	}
	epsilon.Flags().Float64Var(&sigma, "noise-multiplier", 0, "noise standard deviation over sensitivity (required)")
	epsilon.MarkFlagRequired("noise-multiplier")
	calibrate.Flags().Float64Var(&target, "target-epsilon", 0, "the ε to meet (required)")
	calibrate.MarkFlagRequired("target-epsilon")
	cmd.AddCommand(epsilon, calibrate, newPrivacyAuditCmd(env, "audit"))
	return cmd
}
