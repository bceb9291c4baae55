package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// shop writes an events table with a manifest (so an identity) under dir
// and returns its path and identity.
func shop(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	s, _ := dataset.NewFileStore(dir)
	out, err := dataset.NewOutput(ctx, s, name, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	id := out.NewPopulation()
	out.PutFile(ctx, "dt=2026-11-01/part.parquet", []byte("x"), 0)
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name), id
}

// policyFile writes a policy whose budgets section is budgets (YAML
// lines, indented by two spaces; none when empty).
func policyFile(t *testing.T, dir string, budgets ...string) string {
	t.Helper()
	text := "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  segmentation: {tcf_purposes: [3], columns: [subject_id, event_time], retention_days: 30}\n"
	if len(budgets) > 0 {
		text += "budgets:\n  " + strings.Join(budgets, "\n  ") + "\n"
	}
	p := filepath.Join(dir, fmt.Sprintf("policy-%d.yaml", len(budgets)))
	for i := 0; ; i++ {
		if _, err := os.Stat(p); err != nil {
			break
		}
		p = filepath.Join(dir, fmt.Sprintf("policy-%d-%d.yaml", len(budgets), i))
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// jobsPolicy is the SetBy of a budget that the unpinned policy file
// sets.
func jobsPolicy(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("policy %s (sha256 %x), chosen by the job: no pinned policy (VEIL_POLICY unset)", file, sha256.Sum256(data))
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	events, id := shop(t, dir, "events")
	other, otherID := shop(t, dir, "other")
	ledger := filepath.Join(dir, "ledger")
	byURL := policyFile(t, dir, fmt.Sprintf("%q: {ledger: %s, epsilon: 5, delta: 1.0e-5, period: month}", "file://"+events+"/", ledger))
	byID := policyFile(t, dir, fmt.Sprintf("%s: {ledger: %s, epsilon: 5, delta: 1.0e-5, period: month}", id, "file://"+ledger))
	none := policyFile(t, dir)
	steward := budget.Policy{Epsilon: 5, Delta: 1e-5, Period: "month"}
	job := &budget.Config{Ledger: filepath.Join(dir, "fresh-ledger"), Policy: budget.Policy{Epsilon: 100, Delta: 1e-5, Period: "total"}}
	same := &budget.Config{Ledger: "file://" + ledger + "/", Policy: steward}
	for _, tc := range []struct {
		name, table, policy string
		job                 *budget.Config
		want                Budget
		err                 error
	}{
		{"no budgets: the job's", events, none, job, Budget{Dataset: id, Ledger: job.Ledger, Policy: job.Policy, SetBy: SetByJob}, nil},
		{"no budgets: the job's declared dataset", events, none, &budget.Config{Ledger: job.Ledger, Dataset: "legacy", Policy: job.Policy}, Budget{Dataset: "legacy", Ledger: job.Ledger, Policy: job.Policy, SetBy: SetByJob}, nil},
		{"built-in policy: the job's", events, "", job, Budget{Dataset: id, Ledger: job.Ledger, Policy: job.Policy, SetBy: SetByJob}, nil},
		{"no budgets anywhere", events, none, nil, Budget{}, budget.ErrPolicy},
		{"policy keyed by URL", events, byURL, nil, Budget{Dataset: id, Ledger: ledger, Policy: steward, SetBy: jobsPolicy(t, byURL)}, nil},
		{"policy keyed by URL, a partition", filepath.Join(events, "dt=2026-11-01"), byURL, nil, Budget{Dataset: id, Ledger: ledger, Policy: steward, SetBy: jobsPolicy(t, byURL)}, nil},
		{"policy keyed by identity", "file://" + events, byID, nil, Budget{Dataset: id, Ledger: "file://" + ledger, Policy: steward, SetBy: jobsPolicy(t, byID)}, nil},
		{"job restates the policy's budget", events, byURL, same, Budget{Dataset: id, Ledger: ledger, Policy: steward, SetBy: jobsPolicy(t, byURL)}, nil},
		{"job declares the table's identity", events, byURL, &budget.Config{Dataset: id}, Budget{Dataset: id, Ledger: ledger, Policy: steward, SetBy: jobsPolicy(t, byURL)}, nil},
		{"job names a fresh budget", events, byURL, job, Budget{}, ErrBudgetConflict},
		{"job names another period", events, byID, &budget.Config{Ledger: ledger, Policy: budget.Policy{Epsilon: 5, Delta: 1e-5, Period: "day"}}, Budget{}, ErrBudgetConflict},
		{"job declares another identity", events, byURL, &budget.Config{Dataset: "shop", Ledger: ledger, Policy: steward}, Budget{}, ErrBudgetConflict},
		{"table without a budget", other, byURL, nil, Budget{}, ErrNoBudget},
		{"table without a budget, the job states one", other, byID, job, Budget{}, ErrNoBudget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(ctx, tc.table, tc.job, tc.policy, dataset.URLOptions{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want %v on one line", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	// The classes the CLI maps to exit codes: a table the policy sets no
	// budget for is a refusal (3), a conflicting job a usage error (2).
	_, err := Resolve(ctx, other, nil, byURL, dataset.URLOptions{})
	if !errors.Is(err, privacy.ErrRefused) || errors.Is(err, budget.ErrPolicy) || errors.Is(err, privacy.ErrPolicy) {
		t.Errorf("no budget: %v is not a refusal alone", err)
	}
	if !strings.Contains(err.Error(), otherID) || !strings.Contains(err.Error(), byURL) {
		t.Errorf("no budget: %v names neither the identity nor the policy", err)
	}
	_, err = Resolve(ctx, events, job, byURL, dataset.URLOptions{})
	for _, want := range []string{job.Ledger, ledger, "ε 100", "ε 5", byURL} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("conflict: %v does not name %q", err, want)
		}
	}
	// Two keys of one population with different budgets: the policy is
	// ambiguous.
	twice := policyFile(t, dir, fmt.Sprintf("%s: {ledger: %s, epsilon: 5, delta: 1.0e-5}", id, ledger), fmt.Sprintf("%q: {ledger: %s, epsilon: 6, delta: 1.0e-5}", events, ledger))
	if _, err := Resolve(ctx, events, nil, twice, dataset.URLOptions{}); !errors.Is(err, privacy.ErrPolicy) {
		t.Errorf("two budgets for one population: %v", err)
	}
}

func TestSpend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	events, id := shop(t, dir, "events")
	ledger := filepath.Join(dir, "ledger")
	pol := policyFile(t, dir, fmt.Sprintf("%q: {ledger: %s, epsilon: 2, delta: 1.0e-5, period: month}", events, ledger))
	ev := accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 4, Count: 1, Note: "model"}
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	req := Request{Table: filepath.Join(events, "dt=2026-11-01"), PolicyFile: pol, RunID: "run-1", Job: "train", LogicalDate: day, WindowDays: 30,
		Accountant: "rdp", Events: []accountant.Event{ev}, Config: "c"}
	rec, b, err := Spend(ctx, req, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Dataset != id || b.Dataset != id || b.Ledger != ledger || !b.FromPolicy() || rec.Epsilon <= 0 || rec.SetBy != jobsPolicy(t, pol) {
		t.Errorf("record %+v, budget %+v", rec, b)
	}
	// The record is in the policy's ledger, under the table's identity.
	s, _ := dataset.NewFileStore(ledger)
	if recs, err := budget.Open(s, "").Records(ctx, id); err != nil || len(recs) != 1 || recs[0].RunID != "run-1" {
		t.Errorf("ledger records %+v, %v", recs, err)
	}
	// A retry spends nothing again.
	if again, _, err := Spend(ctx, req, dataset.URLOptions{}); err != nil || again.Seq != rec.Seq {
		t.Errorf("retry: %+v, %v", again, err)
	}
	// Past the steward's budget: refused.
	big := req
	big.RunID, big.Events = "run-2", []accountant.Event{{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 1, Count: 4, Note: "model"}}
	if _, _, err := Spend(ctx, big, dataset.URLOptions{}); !errors.Is(err, budget.ErrExhausted) {
		t.Errorf("past the budget: %v", err)
	}
	// Validation comes first: nothing to charge, no run id, no date.
	for name, mut := range map[string]func(*Request){
		"no events":  func(r *Request) { r.Events = nil },
		"no run id":  func(r *Request) { r.RunID = "" },
		"no date":    func(r *Request) { r.LogicalDate = time.Time{} },
		"no table":   func(r *Request) { r.Table = "" },
		"accountant": func(r *Request) { r.Accountant = "moments" },
		"bad job delta": func(r *Request) {
			r.Budget = &budget.Config{Ledger: ledger, Policy: budget.Policy{Epsilon: 2, Delta: 1}}
		},
	} {
		bad := req
		bad.RunID = "run-bad"
		mut(&bad)
		if _, _, err := Spend(ctx, bad, dataset.URLOptions{}); !errors.Is(err, budget.ErrPolicy) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without budgets in the policy the job's budget is spent, and the log
	// says that the steward did not choose it.
	var logs bytes.Buffer
	own := req
	own.RunID, own.PolicyFile, own.Log = "run-3", policyFile(t, dir), slog.New(slog.NewTextHandler(&logs, nil))
	own.Budget = &budget.Config{Ledger: filepath.Join(dir, "job-ledger"), Policy: budget.Policy{Epsilon: 10, Delta: 1e-5}}
	if rec, b, err := Spend(ctx, own, dataset.URLOptions{}); err != nil || b.FromPolicy() || !strings.Contains(b.String(), "did not choose") || rec.SetBy != SetByJob {
		t.Errorf("job's budget: %+v, %v", b, err)
	}
	if !strings.Contains(logs.String(), "chosen by the job") {
		t.Errorf("log %q does not say who chose the budget", logs.String())
	}
}

func ExampleResolve() {
	// The built-in policy sets no budgets: the job's budget section
	// decides, and the budget says that the steward did not choose it.
	job := &budget.Config{Ledger: "s3://state/ledger", Dataset: "shop", Policy: budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "month"}}
	b, err := Resolve(context.Background(), "s3://shop/events", job, "", dataset.URLOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b)
	// Output:
	// ε 10 at δ 1e-05 per month on shop in s3://state/ledger, set by the job (the policy declares no budgets: the steward did not choose it)
}
