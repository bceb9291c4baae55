package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
)

// loadPolicy reads --policy, or returns the built-in default (the same as
// configs/policy.yaml).
func loadPolicy(file string) (*privacy.Policy, error) {
	if file == "" {
		return privacy.DefaultPolicy(), nil
	}
	return privacy.LoadPolicy(file)
}

// siblingRef names the table next to an events prefix: .../events ->
// .../consent.
func siblingRef(ctx context.Context, env *Env, events, name string) (*dataset.Ref, error) {
	u := strings.TrimRight(events, "/")
	q := ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u, q = u[:i], u[i:]
	}
	ref, err := open.Ref(ctx, path.Dir(u)+"/"+name+q, env.urlOptions())
	if strings.HasPrefix(u, "s3://") || strings.HasPrefix(u, "file://") {
		scheme := u[:strings.Index(u, "://")+3]
		rest := strings.TrimPrefix(u, scheme)
		ref, err = open.Ref(ctx, scheme+path.Dir(rest)+"/"+name+q, env.urlOptions())
	}
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

type filterOptions struct {
	purposes               []string
	date, consent, erasure string
	policyFile             string
	asJSON                 bool
	workers                int
}

func newFilterCmd(env *Env) *cobra.Command {
	var o filterOptions
	cmd := &cobra.Command{
		Use:   "filter URL --purposes P[,P] --logical-date D",
		Short: "Apply consent, erasure and retention to events and report what is kept and dropped",
		Long: `Read the events at URL the way a job with --purposes would at --logical-date:
the PII guard first, then only the dt= partitions inside the retention
window, only the columns the purposes allow, and only the rows of subjects
who granted every purpose and did not ask for erasure. Prints the rows and
subjects kept and dropped by reason.

--consent and --erasure default to the consent/ and erasure/ tables next to
URL, as veil generate lays them out.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runFilter(cmd.Context(), env, args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.purposes, "purposes", nil, "purposes of the job (required)")
	f.StringVar(&o.date, "logical-date", "", "logical date YYYY-MM-DD (required)")
	f.StringVar(&o.consent, "consent", "", "consent table URL")
	f.StringVar(&o.erasure, "erasure", "", "erasure table URL")
	f.StringVar(&o.policyFile, "policy", "", "policy file (default: the built-in policy, as configs/policy.yaml)")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "row groups read at once")
	docDefault(f, "workers", "the number of CPUs")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagRequired("purposes")
	cmd.MarkFlagRequired("logical-date")
	return cmd
}

func runFilter(ctx context.Context, env *Env, url string, o filterOptions) error {
	day, err := time.Parse(time.DateOnly, o.date)
	if err != nil {
		return usagef(fmt.Errorf("--logical-date %q is not a date (YYYY-MM-DD)", o.date))
	}
	pol, err := loadPolicy(o.policyFile)
	if err != nil {
		return err
	}
	if err := pol.CheckPurposes(o.purposes); err != nil {
		return err
	}
	ref, err := open.Ref(ctx, url, env.urlOptions())
	if err != nil {
		return err
	}
	table := func(flag, name string) (*dataset.Ref, error) {
		if flag != "" {
			r, err := open.Ref(ctx, flag, env.urlOptions())
			return &r, err
		}
		return siblingRef(ctx, env, url, name)
	}
	consent, err := table(o.consent, "consent")
	if err != nil {
		return err
	}
	erasure, err := table(o.erasure, "erasure")
	if err != nil {
		return err
	}
	start := time.Now()
	ix, err := privacy.BuildConsentIndex(ctx, pol, consent, erasure, day)
	if err != nil {
		return err
	}
	flt, err := privacy.NewFilter(pol, ix, o.purposes)
	if err != nil {
		return err
	}
	// Counting needs the subject and the time only: the other columns the
	// purposes allow are left undecoded (the PII guard reads them).
	sc, err := privacy.FilteredScan(ctx, pol, flt, ref, nil)
	if err != nil {
		return err
	}
	defer sc.Close()
	// The guard checks the subject tokens in the scan's own batches
	// rather than reading them twice; nothing of the scan is shown
	// before its verdict, which is ScanPII's.
	guard, err := privacy.GuardScan(ctx, sc, pol, o.workers, "subject_id")
	if err != nil {
		return err
	}
	keeps := make([][]bool, max(1, o.workers))
	err = sc.Run(ctx, o.workers, func(w int, u dataset.Unit, b *dataset.Batch) error {
		guard.Check(w, u, b)
		var aerr error
		keeps[w], aerr = flt.Apply(b, keeps[w])
		return aerr
	})
	if err := guard.Verdict(ctx, err); err != nil {
		return err
	}
	rep := flt.Report()
	env.logger().Info("filtered", "rows_read", rep.RowsRead, "rows_kept", rep.RowsKept, "seconds", time.Since(start).Seconds())
	if o.asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(env.Stdout, "purposes %s at %s; retention %d days (from %s)\n", strings.Join(rep.Purposes, ", "), rep.LogicalDate, rep.RetentionDays, rep.RetentionStart.Format(time.DateOnly))
	fmt.Fprintln(tw, "\trows\tsubjects\t")
	fmt.Fprintf(tw, "read\t%d\t%d\t\n", rep.RowsRead, rep.SubjectsSeen)
	fmt.Fprintf(tw, "kept\t%d\t%d\t\n", rep.RowsKept, rep.SubjectsKept)
	for _, k := range slices.Sorted(maps.Keys(rep.RowsDropped)) {
		fmt.Fprintf(tw, "dropped: %s\t%d\t%d\t\n", k, rep.RowsDropped[k], rep.SubjectsDropped[k])
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "consent: %d records (%d after the logical date, %d malformed, %d TC strings, %d opt-outs); %d erasure requests\n",
		rep.Consent.Records, rep.Consent.Future, rep.Consent.Malformed, rep.Consent.TCStrings, rep.Consent.OptOuts, rep.Consent.ErasureRequests)
	for _, ex := range rep.Consent.MalformedExamples {
		fmt.Fprintf(env.Stdout, "  malformed: %s\n", ex)
	}
	return nil
}

func newScanPIICmd(env *Env) *cobra.Command {
	var policyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scan-pii URL",
		Short: "Scan the string columns of a Parquet file or prefix for direct identifiers",
		Long: `Scan string columns for e-mail addresses, phone numbers, IPv4 and IPv6
addresses and payment card numbers (Luhn-checked): every distinct value of
small files, a bounded sample of row groups of large ones (pii.sample_rows in
the policy) and the min/max statistics of every row group. Exits 3, naming
the file, the column and a redacted example, when anything is found.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			pol, err := loadPolicy(policyFile)
			if err != nil {
				return err
			}
			ref, err := open.Ref(cmd.Context(), args[0], env.urlOptions())
			if err != nil {
				return err
			}
			keys, err := dataset.Inputs(cmd.Context(), ref, dataset.Window{})
			if err != nil {
				return err
			}
			rep, err := privacy.ScanPII(cmd.Context(), ref.Store, keys, pol)
			if asJSON && rep != nil {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
			} else if err == nil {
				fmt.Fprintf(env.Stdout, "no identifiers found: %d files, %d string columns, %d of %d rows read (%d distinct values checked)\n",
					rep.Files, rep.Columns, rep.RowsScanned, rep.RowsTotal, rep.ValuesRead)
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (default: the built-in policy)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
