package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

// stewardShop generates a small shop under dir and writes a policy that
// sets the budget of its events (under the key given, a spelling of the
// table or its identity); it returns the events path, their identity and
// the policy file.
func stewardShop(t *testing.T, dir string, key func(events, identity string) string) (events, identity, policy string) {
	t.Helper()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--items", "60", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	events = filepath.Join(dir, "shop", "events")
	s, _ := dataset.NewFileStore(events)
	m, err := dataset.ReadManifest(context.Background(), s, "")
	if err != nil || m.Identity == "" {
		t.Fatalf("events manifest %+v, %v", m, err)
	}
	text := strings.Replace(string(configs.Policy), "  veil-demo/shop/events: {ledger: veil-demo/ledger,",
		fmt.Sprintf("  %q: {ledger: %q,", key(events, m.Identity), filepath.Join(dir, "ledger")), 1)
	if text == string(configs.Policy) {
		t.Fatal("configs/policy.yaml no longer sets the demo's budget where the test expects it")
	}
	policy = filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(text), 0o644)
	return events, m.Identity, policy
}

// With a policy that sets budgets, the steward's budget is charged: a job
// (here veil train mf) needs no ledger of its own, may restate the budget,
// and is refused when it states another (exit 2) or when its table has no
// budget in the policy (exit 3), before anything is spent.
func TestPolicyBudgetsTrainMF(t *testing.T) {
	dir := t.TempDir()
	events, id, policy := stewardShop(t, dir, func(events, _ string) string { return "file://" + events + "/" })
	ledger := filepath.Join(dir, "ledger")
	t.Setenv("VEIL_POLICY", policy) // the deployment pins it: the steward's
	mf := func(extra ...string) (int, string, string) {
		return run(t, append([]string{"train", "mf", "--in", events, "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "4", "--dim", "4", "--epochs", "1", "--baselines=false",
			"--logical-date", "2026-11-27", "--policy", policy}, extra...)...)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		words []string
	}{
		{"another ledger", []string{"--ledger", filepath.Join(dir, "my-ledger")}, 2, []string{"my-ledger", ledger, policy}},
		{"another epsilon", []string{"--budget-epsilon", "1000"}, 2, []string{"ε 1000", "ε 20", policy}},
	} {
		code, _, msg := mf(tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d (%s)", tc.name, code, tc.code, msg)
		}
		for _, w := range tc.words {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not name %q", tc.name, msg, w)
			}
		}
	}
	if _, err := os.Stat(ledger); err == nil {
		t.Fatal("a refused run wrote to the ledger")
	}
	// The steward's budget, restated or not.
	code, out, msg := mf()
	if code != 0 || !strings.Contains(out, "budget set by the data steward's policy "+policy) {
		t.Fatalf("under the policy's budget: %d %s\n%s", code, msg, out)
	}
	if code, out, msg := mf("--ledger", "file://"+ledger, "--budget-epsilon", "20"); code != 0 {
		t.Fatalf("restating the policy's budget: %d %s\n%s", code, msg, out)
	}
	recs, err := ledgerOf(t, ledger).Records(context.Background(), id)
	if err != nil || len(recs) != 2 || !strings.HasPrefix(recs[0].SetBy, "policy "+policy+" (sha256 ") {
		t.Errorf("records in the policy's ledger: %+v, %v", recs, err)
	}
	// veil budget show takes the ledger and the budget from the policy.
	code, out, msg = run(t, "budget", "show", events, "--policy", policy, "--date", "2026-11-27", "--json")
	var st budget.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Policy == nil || st.Policy.Epsilon != 20 || st.Policy.Period != "month" || len(st.Runs) != 2 || st.Remaining == nil {
		t.Errorf("budget show --policy: %d %s\n%s", code, msg, out)
	}
	if code, out, _ := run(t, "budget", "show", events, "--policy", policy, "--date", "2026-11-27"); code != 0 || !strings.Contains(out, "budget set by") || !strings.Contains(out, "per month") {
		t.Errorf("budget show --policy (text): %d\n%s", code, out)
	}
	// A table the policy sets no budget for: refused by policy.
	other := filepath.Join(dir, "other")
	if code, _, msg := run(t, "generate", "--out", other, "--subjects", "100", "--days", "2"); code != 0 {
		t.Fatal(msg)
	}
	code, _, msg = run(t, "train", "mf", "--in", filepath.Join(other, "events"), "--epsilon", "4", "--dim", "4", "--epochs", "1", "--policy", policy, "--ledger", ledger)
	if code != 3 || !strings.Contains(msg, "no privacy budget") || !strings.Contains(msg, policy) {
		t.Errorf("a table without a budget: %d %s", code, msg)
	}
}

// A job file's budget section cannot choose its budget under a policy
// that sets budgets: another identity (budget.dataset) or another ε is a
// usage error; a job without budget section is charged the policy's.
func TestPolicyBudgetsSegmentJob(t *testing.T) {
	dir := t.TempDir()
	events, id, policy := stewardShop(t, dir, func(_, identity string) string { return identity })
	ledger := filepath.Join(dir, "ledger")
	job := func(name, budget string) string {
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("events: %s\noutput: %s\npolicy: %s\nkmeans: {k: \"3\", seed: 1}\ncohort_floor: {min_size: 20, small: merge}\nnoisy_sizes_sigma: 3\nprivacy: {epsilon: 1, delta: 1.0e-6, iterations: 3, clip_radius: 1.5}\n%s",
			events, filepath.Join(dir, "out", name), policy, budget)), 0o644)
		return p
	}
	for _, tc := range []struct{ name, budget, word string }{
		{"fresh-dataset", fmt.Sprintf("budget: {ledger: %s, dataset: fresh, epsilon: 20, delta: 1.0e-5, period: month}\n", ledger), `budget.dataset "fresh"`},
		{"more-epsilon", fmt.Sprintf("budget: {ledger: %s, epsilon: 200, delta: 1.0e-5, period: month}\n", ledger), "ε 200"},
		{"other-period", fmt.Sprintf("budget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: total}\n", ledger), "per total"},
	} {
		code, _, msg := run(t, "segment", "--config", job(tc.name, tc.budget), "--logical-date", "2026-11-27")
		if code != 2 || !strings.Contains(msg, tc.word) || !strings.Contains(msg, policy) {
			t.Errorf("%s: exit %d (%s), want 2 naming %q and the policy", tc.name, code, msg, tc.word)
		}
	}
	if _, err := os.Stat(ledger); err == nil {
		t.Fatal("a refused job wrote to the ledger")
	}
	code, out, msg := run(t, "segment", "--config", job("steward", ""), "--logical-date", "2026-11-27")
	if code != 0 {
		t.Fatalf("a job under the policy's budget: %d %s\n%s", code, msg, out)
	}
	recs, err := ledgerOf(t, ledger).Records(context.Background(), id)
	if err != nil || len(recs) != 1 || recs[0].Job != "segment" {
		t.Errorf("records: %+v, %v", recs, err)
	}
}

// veil policy check lists the budgets the policy sets, and checks that
// the role may write their ledgers.
func TestPolicyCheckListsBudgets(t *testing.T) {
	nightly, _ := filepath.Abs("../../configs/nightly.yaml")
	t.Chdir(t.TempDir())
	os.MkdirAll("veil-demo", 0o755)
	os.WriteFile("veil-demo/policy.yaml", demoText(configs.Policy, "veil-demo"), 0o644)
	// Unpinned, the steps chose the policy: nothing calls it the steward's.
	t.Setenv("VEIL_POLICY", "")
	code, out, msg := run(t, "policy", "check", "--spec", nightly, "--root", "veil-demo", "--policy", "veil-demo/policy.yaml")
	if code != 0 || strings.Contains(out, "steward in") || !strings.Contains(out, "chosen by the job: no pinned policy (VEIL_POLICY unset)") {
		t.Fatalf("unpinned: %d %s\n%s", code, msg, out)
	}
	t.Setenv("VEIL_POLICY", "veil-demo/policy.yaml")
	code, out, msg = run(t, "policy", "check", "--spec", nightly, "--root", "veil-demo", "--policy", "veil-demo/policy.yaml")
	if code != 0 {
		t.Fatalf("%d %s\n%s", code, msg, out)
	}
	for _, w := range []string{"budgets set by the data steward in veil-demo/policy.yaml", "pinned by VEIL_POLICY", "veil-demo/shop/events", "ε 20", "δ 1e-05", "per month", "veil-demo/ledger"} {
		if !strings.Contains(out, w) {
			t.Errorf("policy check output lacks %q:\n%s", w, out)
		}
	}
	t.Setenv("VEIL_POLICY", "")
	// The built-in policy sets none: jobs choose.
	os.WriteFile("s.yaml", []byte("name: n\nstate: veil-demo/state\nsteps:\n  - name: a\n    segment: {events: veil-demo/shop/events, output: veil-demo/out/x, budget: {ledger: veil-demo/ledger, epsilon: 1, delta: 1.0e-5}}\n"), 0o644)
	if code, out, _ := run(t, "policy", "check", "--spec", "s.yaml", "--root", "veil-demo"); code != 0 || !strings.Contains(out, "the built-in policy (steps a) sets no budgets") {
		t.Errorf("built-in policy: %d\n%s", code, out)
	}
	// A role that may not write the policy's ledger fails the check.
	code, out, _ = run(t, "policy", "check", "--spec", nightly, "--root", "veil-demo", "--policy", "veil-demo/policy.yaml", "--role", "marketing")
	if code != 2 || !strings.Contains(out, "ledger") {
		t.Errorf("marketing and the ledger: %d\n%s", code, out)
	}
}

// The deployment pins the steward's policy (VEIL_POLICY): a job that names
// a policy of its own, with a fresh budget or the non-private switch on,
// is refused (exit 3) before anything is spent; a job that names none is
// charged the pinned budget, which the output calls the data steward's.
// Unpinned, the job's own policy decides, and the output says so.
func TestPinnedPolicyTrainMF(t *testing.T) {
	dir := t.TempDir()
	events, id, policy := stewardShop(t, dir, func(events, _ string) string { return events })
	ledger := filepath.Join(dir, "ledger")
	data, _ := os.ReadFile(policy)
	own := filepath.Join(dir, "own.yaml")
	os.WriteFile(own, []byte(strings.Replace(strings.Replace(string(data), "epsilon: 20", "epsilon: 1000", 1), ledger, filepath.Join(dir, "own-ledger"), 1)), 0o644)
	mf := func(extra ...string) (int, string, string) {
		return run(t, append([]string{"train", "mf", "--in", events, "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "4", "--dim", "4", "--epochs", "1", "--baselines=false",
			"--logical-date", "2026-11-27"}, extra...)...)
	}
	t.Setenv("VEIL_POLICY", policy)
	for name, args := range map[string][]string{
		"its own budgets":     {"--policy", own},
		"its own switch on":   {"--policy", allowNonPrivatePolicy(t, dir), "--epsilon", "inf"},
		"a file not readable": {"--policy", filepath.Join(dir, "missing.yaml")},
	} {
		code, _, msg := mf(args...)
		if code != 3 || !strings.Contains(msg, "VEIL_POLICY") || strings.Contains(strings.TrimSpace(msg), "\n") {
			t.Errorf("%s under the pinned policy: exit %d, %q", name, code, msg)
		}
	}
	for _, l := range []string{ledger, filepath.Join(dir, "own-ledger")} {
		if _, err := os.Stat(l); err == nil {
			t.Fatalf("a refused run wrote to %s", l)
		}
	}
	code, out, msg := mf()
	if code != 0 || !strings.Contains(out, "budget set by the data steward's policy "+policy) {
		t.Fatalf("no policy under the pinned one: %d %s\n%s", code, msg, out)
	}
	recs, err := ledgerOf(t, ledger).Records(context.Background(), id)
	if err != nil || len(recs) != 1 || !strings.HasPrefix(recs[0].SetBy, "policy "+policy+" (sha256 ") || !strings.HasSuffix(recs[0].SetBy, "pinned by VEIL_POLICY") {
		t.Errorf("records in the pinned policy's ledger: %+v, %v", recs, err)
	}
	// Unpinned: the job's policy is charged, and nothing calls it the
	// steward's.
	t.Setenv("VEIL_POLICY", "")
	code, out, msg = mf("--policy", own)
	if code != 0 || !strings.Contains(out, "chosen by the job: no pinned policy (VEIL_POLICY unset)") || strings.Contains(out, "steward's") {
		t.Fatalf("the job's own policy, unpinned: %d %s\n%s", code, msg, out)
	}
}
