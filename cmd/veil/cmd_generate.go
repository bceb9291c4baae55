package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
)

type generateOptions struct {
	Out     string
	Config  synth.Config
	End     string
	JSON    bool
	Workers int
}

func newGenerateCmd(env *Env) *cobra.Command {
	opts := generateOptions{Config: synth.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "generate --out URL",
		Short: "Generate a synthetic shop: events, consent ledger, erasure requests",
		Long: `Generate a synthetic shop into URL (a directory, file:// or s3:// prefix):
events/ (Hive-style dt= partitions), consent/, erasure/ and truth/ (the planted
taste groups, for evaluation only). The output is a pure function of the
flags; each table is committed with a manifest.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runGenerate(cmd.Context(), env, opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "output URL (required)")
	f.IntVar(&opts.Config.Subjects, "subjects", opts.Config.Subjects, "number of customers")
	f.IntVar(&opts.Config.Items, "items", opts.Config.Items, "number of products")
	f.IntVar(&opts.Config.Days, "days", opts.Config.Days, "days of events")
	f.StringVar(&opts.End, "end", opts.Config.End.Format(time.DateOnly), "last day of events (YYYY-MM-DD)")
	f.Uint64Var(&opts.Config.Seed, "seed", opts.Config.Seed, "random seed")
	f.IntVar(&opts.Config.Groups, "groups", opts.Config.Groups, "latent taste groups")
	f.Float64Var(&opts.Config.SessionRate, "session-rate", opts.Config.SessionRate, "mean sessions per subject per day")
	f.IntVar(&opts.Config.Workers, "workers", opts.Config.Workers, "days generated in parallel")
	f.BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runGenerate(ctx context.Context, env *Env, opts generateOptions) error {
	end, err := time.Parse(time.DateOnly, opts.End)
	if err != nil {
		return usagef(fmt.Errorf("--end %q is not a date (YYYY-MM-DD)", opts.End))
	}
	opts.Config.End = end
	shop, err := synth.New(opts.Config)
	if err != nil {
		return usagef(fmt.Errorf("generate: %w", err))
	}
	store, err := dataset.OpenStore(ctx, opts.Out, env.urlOptions())
	if err != nil {
		return err
	}
	log := env.logger()
	log.Info("generating shop", "out", store.Location(), "subjects", opts.Config.Subjects, "items", opts.Config.Items, "days", opts.Config.Days, "seed", opts.Config.Seed)
	start := time.Now()
	st, err := shop.Write(ctx, store, "", "veil "+Version)
	if err != nil {
		return fmt.Errorf("generating shop into %s: %w", store.Location(), err)
	}
	elapsed := time.Since(start)
	log.Info("generated shop", "events", st.Events, "consent_records", st.Consent, "erasure_requests", st.Erasure, "seconds", elapsed.Seconds())
	if opts.JSON {
		return json.NewEncoder(env.Stdout).Encode(struct {
			Out string `json:"out"`
			synth.Stats
			Seconds float64 `json:"seconds"`
		}{store.Location(), st, elapsed.Seconds()})
	}
	fmt.Fprintf(env.Stdout, "generated %d events, %d consent records, %d erasure requests in %.1fs\n", st.Events, st.Consent, st.Erasure, elapsed.Seconds())
	fmt.Fprintf(env.Stdout, "  events   %s/events\n  consent  %s/consent\n  erasure  %s/erasure\n", store.Location(), store.Location(), store.Location())
	return nil
}
