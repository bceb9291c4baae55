package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/privacy"
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
	f.Float64Var(&opts.Config.RegionSkew, "region-skew", 0, "plant a bias: share of subjects living in their taste group's home region")
	f.IntVar(&opts.Config.Workers, "workers", opts.Config.Workers, "days generated in parallel")
	f.BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	cmd.MarkFlagRequired("out")
	cmd.AddCommand(newGenerateConsentCmd(env))
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
	store, err := open.Store(ctx, opts.Out, env.urlOptions())
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

type consentOptions struct {
	events, out, date string
	purposes          []string
}

func newGenerateConsentCmd(env *Env) *cobra.Command {
	var o consentOptions
	cmd := &cobra.Command{
		Use:   "consent --events URL --out URL --purposes P[,P] --recorded-at D",
		Short: "Write a consent table granting purposes to every subject of an events dataset (test and benchmark data only)",
		Long: `Write a consent table (and an empty erasure table) that grants the given
purposes, recorded at --recorded-at, to every subject of an events dataset.

This is for data sets that come without consent records, such as the UCI
Online Retail benchmark after veil pseudonymize: it states consent that
nobody gave, so never use it on real customers' data.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runGenerateConsent(cmd.Context(), env, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.events, "events", "", "events dataset (required)")
	f.StringVar(&o.out, "out", "", "output URL: consent/ and erasure/ are written under it (required)")
	f.StringSliceVar(&o.purposes, "purposes", nil, "purposes to grant (required)")
	f.StringVar(&o.date, "recorded-at", "", "day the grants are recorded (YYYY-MM-DD, required)")
	for _, n := range []string{"events", "out", "purposes", "recorded-at"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func runGenerateConsent(ctx context.Context, env *Env, o consentOptions) error {
	day, err := time.Parse(time.DateOnly, o.date)
	if err != nil {
		return usagef(fmt.Errorf("--recorded-at %q is not a date (YYYY-MM-DD)", o.date))
	}
	if err := privacy.DefaultPolicy().CheckPurposes(o.purposes); err != nil {
		return err
	}
	ref, err := open.Ref(ctx, o.events, env.urlOptions())
	if err != nil {
		return err
	}
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		return err
	}
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, dataset.EventsContract, "subject_id")
	if err != nil {
		return err
	}
	defer sc.Close()
	subjects := map[string]struct{}{}
	var b dataset.Batch
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &b); err != nil {
			return err
		}
		for _, s := range b.Column("subject_id").Str.Dict {
			subjects[s] = struct{}{}
		}
	}
	var rows []dataset.Consent
	jur := "UNKNOWN"
	for _, s := range slices.Sorted(maps.Keys(subjects)) {
		for i := range o.purposes {
			rows = append(rows, dataset.Consent{SubjectID: s, Purpose: &o.purposes[i], Status: "granted", RecordedAt: day, Source: "synthetic", Jurisdiction: &jur})
		}
	}
	store, err := open.Store(ctx, o.out, env.urlOptions())
	if err != nil {
		return err
	}
	write := func(prefix string, c *dataset.Contract, put func(*dataset.Output) error) error {
		out, err := dataset.NewOutput(ctx, store, prefix, c, "veil generate consent")
		if err != nil {
			return err
		}
		if err := put(out); err != nil {
			out.Abort(ctx)
			return err
		}
		_, err = out.Commit(ctx, map[string]string{"synthetic": "true"})
		return err
	}
	err = write("consent", dataset.ConsentContract, func(out *dataset.Output) error {
		return dataset.PutParquet(ctx, out, "part-00000.parquet", rows)
	})
	if err != nil {
		return err
	}
	err = write("erasure", dataset.ErasureContract, func(out *dataset.Output) error {
		return dataset.PutParquet[dataset.Erasure](ctx, out, "part-00000.parquet", nil) // no erasure requests
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "granted %s to %d subjects: %s/consent (synthetic consent: test and benchmark data only)\n", strings.Join(o.purposes, ", "), len(subjects), store.Location())
	return nil
}
