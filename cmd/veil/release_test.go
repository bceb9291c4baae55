package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// twoStepSpec is a pipeline of two DP segmentation steps (DP k-means and
// noisy cohort sizes) that spend from one budget of ε eps.
func twoStepSpec(t *testing.T, dir, events string, eps float64) string {
	t.Helper()
	spec := filepath.Join(dir, "two.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: two
state: %[1]s/state
retries: {attempts: 2, backoff: 1s}
steps:
  - name: first
    segment:
      events: %[2]s
      output: %[1]s/out/first
      kmeans: {k: "3", seed: 1}
      cohort_floor: {min_size: 30, small: merge}
      noisy_sizes_sigma: 3
      privacy: {epsilon: 1, delta: 1.0e-7, iterations: 4}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: %[3]g, delta: 1.0e-6, period: total}
  - name: second
    depends_on: [first]
    segment:
      events: %[2]s
      output: %[1]s/out/second
      kmeans: {k: "4", seed: 2}
      cohort_floor: {min_size: 30, small: merge}
      noisy_sizes_sigma: 3
      privacy: {epsilon: 1, delta: 1.0e-7, iterations: 4}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: %[3]g, delta: 1.0e-6, period: total}
`, dir, events, eps)), 0o644)
	return spec
}

// committed lists the manifests under dir/out: the outputs a run committed.
func committed(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(dir, "out"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "_manifest.json" {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// A pipeline whose steps fit the budget one by one but not together is
// refused before its first step: exit 3, nothing spent, nothing committed.
// (Each step used to spend and commit on its own, so the first step's
// cohorts were out and paid for when the second was refused.)
func TestPipelineOverBudgetSpendsNothing(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "400", "--items", "100", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	dp := kmeans.DPConfig{Epsilon: 1, Delta: 1e-7, Iterations: 4}
	_, km, _, err := dp.Plan()
	if err != nil {
		t.Fatal(err)
	}
	one, err := accountant.Spent("pld", 1e-6, accountant.Event{Mechanism: accountant.DiscreteGaussian, Sigma: 3, Sensitivity: 1, Count: 1}, km)
	if err != nil {
		t.Fatal(err)
	}
	spec := twoStepSpec(t, dir, filepath.Join(dir, "shop/events"), 1.2*one.Epsilon)
	code, out := veil(t, nil, "run", spec, "--logical-date", "2026-11-27")
	if code != 3 || !strings.Contains(out, "privacy budget exhausted") {
		t.Fatalf("exit %d, want 3 (budget exhausted)\n%s", code, out)
	}
	if n := ledgerRecords(t, dir); n != 0 {
		t.Errorf("%d ledger records after a refused pipeline, want 0", n)
	}
	if c := committed(t, dir); len(c) != 0 {
		t.Errorf("a refused pipeline committed %v", c)
	}
	// With room for both, one record pays for both steps.
	spec = twoStepSpec(t, dir, filepath.Join(dir, "shop/events"), 3*one.Epsilon)
	if code, out := veil(t, nil, "run", spec, "--logical-date", "2026-11-27"); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := ledgerRecords(t, dir); n != 1 {
		t.Errorf("%d ledger records for one run of two steps, want 1", n)
	}
}

// An events table of the wrong shape is found before anything is spent,
// and is not retried: exit 1, no ledger record.
func TestPipelineWrongSchemaSpendsNothing(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "200", "--items", "50", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	// The consent table is valid Parquet, but not events.
	spec := twoStepSpec(t, dir, filepath.Join(dir, "shop/consent"), 10)
	code, out := veil(t, nil, "run", spec, "--logical-date", "2026-11-27")
	if code != 1 || !strings.Contains(out, "contract") {
		t.Fatalf("exit %d, want 1 naming the contract\n%s", code, out)
	}
	if strings.Contains(out, "retrying") {
		t.Errorf("a table of the wrong shape was retried:\n%s", out)
	}
	if n := ledgerRecords(t, dir); n != 0 {
		t.Errorf("%d ledger records, want 0", n)
	}
}
