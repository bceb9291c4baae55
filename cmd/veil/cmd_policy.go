package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

func newPolicyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Roles and least-privilege access to the store"}
	var policyFile string
	load := func() (*privacy.Policy, error) {
		if policyFile == "" {
			return privacy.DefaultPolicy(), nil
		}
		return privacy.LoadPolicy(policyFile)
	}
	var o privacy.IAMOptions
	iam := &cobra.Command{
		Use:   "iam ROLE --bucket B",
		Short: "Print the AWS IAM policy of a role: prefix-scoped, encrypted puts only, TLS only",
		Long: `Print the least-privilege AWS IAM policy JSON of a role of the policy file
(scheduler, marketing, steward, engineer in the built-in policy): list only
the prefixes the role works in, read and write only its keys (relative to
--prefix in --bucket), deny puts without the --sse encryption header (the
pattern AWS documents), grant the --kms-key, deny plain-HTTP requests.`,
		Args: exactArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			pol, err := load()
			if err != nil {
				return err
			}
			doc, err := pol.IAM(args[0], o)
			if err != nil {
				return usagef(err)
			}
			_, err = env.Stdout.Write(doc.JSON())
			return err
		}),
	}
	iam.Flags().StringVar(&o.Bucket, "bucket", "", "bucket of the store")
	iam.Flags().StringVar(&o.Prefix, "prefix", "", "the store's root inside the bucket")
	iam.Flags().StringVar(&o.SSE, "sse", "aws:kms", "encryption every put must ask for: aws:kms, AES256, or \"\" for none")
	iam.Flags().StringVar(&o.KMSKeyARN, "kms-key", "", "ARN of the KMS key (with --sse aws:kms)")

	var bo privacy.BucketOptions
	var accounts []string
	bucket := &cobra.Command{
		Use:   "bucket ROLE... --bucket B",
		Short: "Print one S3 bucket policy for roles whose users are accounts (versitygw, MinIO, Ceph)",
		Long: `Print the S3 bucket policy that grants each ROLE the statements of veil
policy iam ROLE, with the role's account as the Principal (--account
ROLE=NAME; by default the role's name): for stores whose users are
accounts rather than IAM roles (versitygw, MinIO, Ceph). The Deny
statements (encryption, TLS) apply to every principal, once, and
DenyDeleteAppendOnly denies every principal deletes under --append-only
(the budget ledger and the audit log). The KMS grant of the IAM form is
left out: a bucket policy cannot grant a KMS key.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			pol, err := load()
			if err != nil {
				return err
			}
			bo.Accounts = map[string]string{}
			for _, a := range accounts {
				role, name, ok := strings.Cut(a, "=")
				if !ok || role == "" || name == "" {
					return usagef(fmt.Errorf("--account %q: want ROLE=NAME", a))
				}
				bo.Accounts[role] = name
			}
			doc, err := pol.BucketPolicy(args, bo)
			if err != nil {
				return usagef(err)
			}
			_, err = env.Stdout.Write(doc.JSON())
			return err
		}),
	}
	bf := bucket.Flags()
	bf.StringVar(&bo.Bucket, "bucket", "", "bucket of the store")
	bf.StringVar(&bo.Prefix, "prefix", "", "the store's root inside the bucket")
	bf.StringVar(&bo.SSE, "sse", "aws:kms", "encryption every put must ask for: aws:kms, AES256, or \"\" for none")
	bf.StringArrayVar(&accounts, "account", nil, "ROLE=NAME: the account acting in a role (repeatable; default: the role's name)")
	bf.StringSliceVar(&bo.AppendOnly, "append-only", privacy.DefaultAppendOnly(), "prefixes nobody may delete from")

	var specFile, root, role string
	check := &cobra.Command{
		Use:   "check --spec FILE --root URL",
		Short: "Check that a pipeline spec only reads and writes where its role may",
		Long: `Check every location a pipeline spec reads (events, consent, erasure, raw
exports) and writes (outputs, the events table of a pseudonymize step, the
state, the lineage records, the audit log, the budget ledgers, those the
steps' policies set too) against the --role's prefixes (default
scheduler), relative to --root, the store's root (a directory or an s3://
URL). Every mismatch is listed; exit 2 if any. Then it lists the privacy
budgets that the steps' policies (and --policy) set: the data steward's,
or says that a policy sets none and the jobs choose their own.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			if specFile == "" || root == "" {
				return usagef(errors.New("--spec and --root are required"))
			}
			pol, err := load()
			if err != nil {
				return err
			}
			r, ok := pol.Roles[role]
			if !ok {
				return usagef(fmt.Errorf("the policy has no role %q", role))
			}
			spec, err := jobs.LoadSpec(specFile)
			if err != nil {
				return err
			}
			check := func(root string) []string {
				var bad []string
				for _, a := range spec.Accesses() {
					rel, ok := relativeTo(root, a.URL)
					switch {
					case !ok:
						bad = append(bad, fmt.Sprintf("%s %s is outside the root %s", a.Kind(), a.URL, root))
					case !r.Allows(rel+"/", a.Write) && !r.Allows(rel, a.Write):
						bad = append(bad, fmt.Sprintf("role %s may not %s %s (%s)", role, a.Kind(), rel, a.What))
					}
					if ok && a.Steward {
						bad = append(bad, stewardReaders(pol, role, rel, a.What)...)
					}
				}
				return bad
			}
			// The role's prefixes are relative to the store's root. A root
			// above it (--root . or the repository's absolute path for a
			// spec under veil-demo/) is taken down to the folder below it
			// that the spec's locations agree with best, and said so.
			bad := check(root)
			for _, c := range rootsBelow(root, spec.Accesses()) {
				if b := check(c); len(b) < len(bad) {
					bad = b
					fmt.Fprintf(env.Stdout, "the spec's locations lie under %s: checking it as the store's root (role prefixes are relative to it)\n", c)
					root = c
				}
			}
			for _, b := range bad {
				fmt.Fprintln(env.Stdout, "  "+b)
			}
			if err := printBudgets(cmd.Context(), env, spec, policyFile); err != nil {
				return err
			}
			if len(bad) > 0 {
				return usagef(fmt.Errorf("%s: %d locations disagree with role %s", specFile, len(bad), role))
			}
			fmt.Fprintf(env.Stdout, "%s: every location is within role %s under %s\n", specFile, role, root)
			return nil
		}),
	}
	check.Flags().StringVar(&specFile, "spec", "", "pipeline spec")
	check.Flags().StringVar(&root, "root", "", "the store's root: a directory or s3://bucket/prefix")
	check.Flags().StringVar(&role, "role", "scheduler", "role the pipeline runs as")
	cmd.PersistentFlags().StringVar(&policyFile, "policy", "", "policy file (default: the built-in policy, configs/policy.yaml without its budgets)")
	cmd.AddCommand(iam, bucket, check)
	return cmd
}

// stewardFiles are the logical names of the files a steward report holds
// (the census of TestDemoReleaseCensus), its manifest included.
var stewardFiles = []string{segment.StewardReportFile, segment.StewardAppendixFile, train.StewardReportFile, train.StewardCardFile,
	train.CurvePNGFile, train.ExposurePNGFile, lineage.ContributorsFile, lineage.ContributorsKeyFile, "cohort_sizes_exact.png", dataset.ManifestName}

// stewardReaders lists the roles, other than the one the pipeline runs as
// and the steward, that could read a steward report committed under rel:
// each file of the census is tried at the key a run would write
// (JOB/dt=DATE/run=RUN/NAME-WRITEID.EXT).
func stewardReaders(pol *privacy.Policy, runner, rel, what string) []string {
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(pol.Roles)) {
		if name == runner || name == "steward" {
			continue
		}
		for _, job := range []string{"segment", "train"} {
			var hit string
			for _, f := range stewardFiles {
				if f != dataset.ManifestName {
					ext := path.Ext(f)
					f = strings.TrimSuffix(f, ext) + "-0123456789abcdef" + ext
				}
				key := dataset.Join(rel, job, "dt=2026-11-27", "run=0123456789abcdef", f)
				if pol.Roles[name].Allows(key, false) {
					hit = key
					break
				}
			}
			if hit != "" {
				bad = append(bad, fmt.Sprintf("%s under %s would be readable by role %s (%s): steward reports are for the steward only", what, rel, name, hit))
				break
			}
		}
	}
	return bad
}

// cleanLocation is a location without its query; a local path is made
// absolute (relative to the working directory, as veil run reads it).
func cleanLocation(s string) string {
	s, _, _ = strings.Cut(s, "?")
	if strings.HasPrefix(s, "s3://") {
		return strings.TrimRight(s, "/")
	}
	s = strings.TrimPrefix(s, "file://")
	if abs, err := filepath.Abs(s); err == nil {
		s = filepath.ToSlash(abs)
	}
	return strings.TrimRight(s, "/")
}

// rootsBelow lists the folders between root (excluded) and the deepest
// folder that holds every location of accesses, top down; none when the
// locations do not all lie below root.
func rootsBelow(root string, accesses []jobs.Access) []string {
	r := cleanLocation(root)
	var common []string
	for i, a := range accesses {
		parts := strings.Split(cleanLocation(a.URL), "/")
		if i == 0 {
			common = parts[:len(parts)-1]
			continue
		}
		n := 0
		for n < len(common) && n < len(parts)-1 && common[n] == parts[n] {
			n++
		}
		common = common[:n]
	}
	rel, ok := relativeTo(r, strings.Join(common, "/"))
	if !ok || rel == "" {
		return nil
	}
	var out []string
	elems := strings.Split(rel, "/")
	for i := range elems {
		out = append(out, r+"/"+strings.Join(elems[:i+1], "/"))
	}
	return out
}

// relativeTo returns u's key below root ("" for root itself), comparing
// paths (made absolute) and s3 URLs without their query.
func relativeTo(root, u string) (string, bool) {
	r, x := cleanLocation(root), cleanLocation(u)
	if x == r {
		return "", true
	}
	if !strings.HasPrefix(x, r+"/") {
		return "", false
	}
	return strings.TrimPrefix(x, r+"/"), true
}

// printBudgets lists the budgets set by the policies a spec's steps use
// and by --policy: who set which budget, or that a policy sets none and
// its steps' budget sections choose.
func printBudgets(ctx context.Context, env *Env, spec *jobs.Spec, policyFile string) error {
	files, steps := spec.StepPolicies()
	if policyFile != "" && !slices.Contains(files, policyFile) {
		files = append(files, policyFile)
	}
	for _, file := range files {
		who := ""
		if len(steps[file]) > 0 {
			who = " (steps " + strings.Join(steps[file], ", ") + ")"
		}
		// The policy a step runs under: the pinned one when the
		// deployment pins it (VEIL_POLICY), else the file it names.
		pol, err := privacy.ResolvePolicy(ctx, file, env.urlOptions())
		switch {
		case errors.Is(err, privacy.ErrRefused):
			fmt.Fprintf(env.Stdout, "%s%s is not the policy %s pins: a run refuses it (exit 3)\n", file, who, privacy.PolicyEnv)
			continue
		case errors.Is(err, fs.ErrNotExist):
			// A spec is often checked before its run's folder exists
			// (veil demo writes veil-demo/policy.yaml).
			fmt.Fprintf(env.Stdout, "%s%s does not exist here: its budgets cannot be listed (a run refuses it)\n", cmp.Or(pol.File, file), who)
			continue
		case err != nil:
			return err
		}
		name := cmp.Or(pol.File, "the built-in policy")
		if len(pol.Budgets) == 0 {
			fmt.Fprintf(env.Stdout, "%s%s sets no budgets: each job's budget section chooses its own, not the data steward\n", name, who)
			continue
		}
		if pol.Pinned {
			fmt.Fprintf(env.Stdout, "budgets set by the data steward in %s%s, pinned by %s:\n", name, who, privacy.PolicyEnv)
		} else {
			fmt.Fprintf(env.Stdout, "budgets set in %s%s, chosen by the job: no pinned policy (%s unset):\n", name, who, privacy.PolicyEnv)
		}
		for _, key := range slices.Sorted(maps.Keys(pol.Budgets)) {
			b := pol.Budgets[key]
			fmt.Fprintf(env.Stdout, "  %s: ε %g, δ %g per %s in %s\n", key, b.Epsilon, b.Delta, cmp.Or(b.Period, "total"), b.Ledger)
		}
	}
	return nil
}
