package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

func TestTrainMFCommand(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("subject_id,item_id,event_time,weight\n")
	for s := range 1500 {
		g := s % 5
		for k := range 12 {
			it := g*20 + (s*7+k*3)%20
			if k%4 == 3 {
				it = (s*13 + k) % 100
			}
			fmt.Fprintf(&b, "s%d,i%d,2026-11-%02dT10:00:00Z,1\n", s, it, 1+k)
		}
	}
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(b.String()), 0o644)
	ledger := filepath.Join(dir, "ledger")
	code, out, msg := run(t, "train", "mf", "--in", in, "--no-consent-public-data", "--epsilon", "8", "--ledger", ledger, "--dim", "8", "--json", "--accountant", "rdp")
	if code != 0 {
		t.Fatalf("train mf: %d %s", code, msg)
	}
	var r mfReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Subjects != 1500 || r.Guarantee == nil || r.Guarantee.Epsilon > 8 || r.Eval.NonPrivate == nil ||
		!strings.Contains(r.Consent, "--no-consent-public-data") {
		t.Fatalf("report %s (%v)", out, err)
	}
	if r.Eval.NonPrivate.Recall20 <= r.Eval.Popularity.Recall20 {
		t.Errorf("non-private %.3f not above popularity %.3f", r.Eval.NonPrivate.Recall20, r.Eval.Popularity.Recall20)
	}
	// With the curve, the ledger charges the model and every curve point:
	// the report states that charge, to the last digit, with the breakdown,
	// and the model's own guarantee apart.
	code, out, msg = run(t, "train", "mf", "--in", in, "--no-consent-public-data", "--epsilon", "4", "--curve", "--baselines=false", "--ledger", ledger, "--dim", "4", "--epochs", "1", "--json", "--accountant", "rdp")
	if code != 0 {
		t.Fatalf("train mf --curve: %d %s", code, msg)
	}
	r = mfReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Charged == nil || r.Guarantee == nil {
		t.Fatalf("report %s (%v)", out, err)
	}
	store, _ := dataset.NewFileStore(ledger)
	id, err := budget.Identity(context.Background(), in, "", dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := budget.Open(store, "").Records(context.Background(), id)
	if err != nil || len(recs) != 2 {
		t.Fatalf("ledger: %d records, %v", len(recs), err)
	}
	if rec := recs[1]; r.Charged.Epsilon != rec.Epsilon || r.Charged.Delta != rec.Delta || len(r.Charged.Releases) != 5*len(r.Plan.Events()) || r.Guarantee.Epsilon > 4 || !(rec.Epsilon > 4) {
		t.Errorf("report charges %+v, guarantee %+v; the ledger (ε %v, δ %v)", r.Charged, r.Guarantee, rec.Epsilon, rec.Delta)
	}
	code, out, _ = run(t, "train", "mf", "--in", in, "--no-consent-public-data", "--epsilon", "4", "--curve", "--baselines=false", "--ledger", ledger, "--dim", "4", "--epochs", "1", "--accountant", "rdp")
	recs, _ = budget.Open(store, "").Records(context.Background(), id)
	if full := strconv.FormatFloat(recs[2].Epsilon, 'g', -1, 64); code != 0 || !strings.Contains(out, "the ledger charged ε "+full) || !strings.Contains(out, "the model's own guarantee") {
		t.Errorf("summary does not state the ledger's charge ε %s:\n%s", full, out)
	}
	// Non-private: no ledger needed, nothing charged, no guarantee.
	// --out writes the released files.
	rel := filepath.Join(dir, "release")
	code, out, msg = run(t, "train", "mf", "--in", in, "--no-consent-public-data", "--epsilon", "inf", "--dim", "8", "--json", "--baselines=false", "--out", rel)
	if code != 0 || !strings.Contains(out, `"model_guarantee": null`) || !strings.Contains(out, `"budget_charged": null`) {
		t.Fatalf("non-private: %d %s %s", code, msg, out)
	}
	store, _ = dataset.NewFileStore(rel)
	man, err := dataset.VerifyManifest(context.Background(), store, "")
	if err != nil {
		t.Fatalf("--out: %v", err)
	}
	for _, f := range []string{"item_factors.parquet", "recommendations.parquet", "model_card.json"} {
		if _, ok := man.Find(f); !ok {
			t.Errorf("--out lacks %s (has %v)", f, man.Files)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--in", in, "--no-consent-public-data", "--epsilon", "8"}, 2, "--ledger"},
		{[]string{"--in", in, "--no-consent-public-data", "--epsilon", "zero"}, 2, "--epsilon"},
		{[]string{"--in", in, "--no-consent-public-data", "--epsilon", "0.0001", "--ledger", ledger}, 2, "noise multiplier"},
		{[]string{"--in", in, "--no-consent-public-data", "--epsilon", "8", "--ledger", ledger, "--budget-epsilon", "10", "--budget-delta", "1e-6"}, 3, "budget"},
		{[]string{"--in", filepath.Join(dir, "missing.csv"), "--no-consent-public-data", "--epsilon", "inf"}, 1, "missing.csv"},
		{[]string{"--in", in, "--epsilon", "inf"}, 2, "--no-consent-public-data"},
	} {
		code, _, msg := run(t, append([]string{"train", "mf"}, tc.args...)...)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%v: exit %d (%s), want %d and %q", tc.args, code, msg, tc.code, tc.msg)
		}
	}
	os.WriteFile(in, []byte("subject_id,item_id,weight\ns1,i1,NaN\n"), 0o644)
	if code, _, msg := run(t, "train", "mf", "--in", in, "--no-consent-public-data", "--epsilon", "inf"); code != 1 || !strings.Contains(msg, "line 2") {
		t.Errorf("NaN weight: exit %d (%s)", code, msg)
	}
}

func TestTrainJobCommand(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "1500", "--items", "200", "--days", "20"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\nmodel: {dim: 8, accountant: rdp, epsilon: 8}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: month}\n",
		filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out"), filepath.Join(dir, "ledger"))), 0o644)
	code, out, msg := run(t, "train", "--config", cfg, "--logical-date", "2026-11-27")
	if code != 0 || !strings.Contains(out, "-DP per subject") || !strings.Contains(out, "the ledger charged ε") || !strings.Contains(out, "steward report: file://") || !strings.Contains(out, "withheld") {
		t.Fatalf("train: %d %s\n%s", code, msg, out)
	}
	// A DP run prints no evaluation on the private holdout and no count:
	// they are in the steward report.
	if strings.Contains(out, "popularity") || strings.Contains(out, "subjects,") {
		t.Errorf("a DP training run prints exact figures:\n%s", out)
	}
	os.WriteFile(cfg, []byte("events: x\noutput: y\nmodel: {dim: 0}\n"), 0o644)
	if code, _, msg := run(t, "train", "--config", cfg, "--logical-date", "2026-11-27"); code != 2 {
		t.Errorf("bad config: %d %s", code, msg)
	}
}

func TestAuditPrivacyCommand(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "1500", "--items", "200", "--days", "20"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\nmodel: {dim: 8, accountant: rdp, epsilon: 2}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: month}\n",
		filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out"), filepath.Join(dir, "ledger"))), 0o644)
	code, out, msg := run(t, "audit", "privacy", "--config", cfg, "--logical-date", "2026-11-27", "--canaries", "300", "--canary-items", "4", "--json")
	if code != 0 {
		t.Fatalf("audit privacy: %d %s\n%s", code, msg, out)
	}
	var r struct {
		Canaries  int      `json:"canaries"`
		Lower     float64  `json:"epsilon_lower_bound"`
		Proven    *float64 `json:"proven_epsilon"`
		Violation bool     `json:"violation"`
		AUC       float64  `json:"membership_inference_auc"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Canaries != 300 || r.Proven == nil || r.Violation || r.Lower > *r.Proven || r.AUC <= 0 {
		t.Fatalf("result %s (%v)", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("the audit wrote outputs: %v", err)
	}
	if code, _, msg := run(t, "audit", "privacy", "--config", cfg, "--logical-date", "2026-11-27", "--canaries", "5"); code != 2 || !strings.Contains(msg, "canaries") {
		t.Errorf("5 canaries: exit %d %s", code, msg)
	}
}

// A run id is one plan: rerunning a finished run with the same settings
// trains nothing and spends nothing; the same id with another plan (a
// curve added) is refused before anything is read.
func TestTrainReusedRunID(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	job := fmt.Sprintf("events: %s\noutput: %s\nmodel: {dim: 8, accountant: rdp, epsilon: 8, epochs: 1}\ntop_k: 5\nbudget: {ledger: %s, epsilon: 60, delta: 1.0e-5, period: month}\n",
		filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out"), filepath.Join(dir, "ledger"))
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(job), 0o644)
	args := []string{"train", "--config", cfg, "--logical-date", "2026-11-27", "--run-id", "run-x"}
	if code, _, msg := run(t, args...); code != 0 {
		t.Fatalf("train: %d %s", code, msg)
	}
	manifest := filepath.Join(dir, "out", "dt=2026-11-27", "run=run-x", "_manifest.json")
	before, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, msg := run(t, args...); code != 0 || !strings.Contains(out, "committed earlier") {
		t.Fatalf("rerun of a committed run: %d %s\n%s", code, msg, out)
	}
	if after, _ := os.ReadFile(manifest); string(after) != string(before) {
		t.Errorf("the rerun of a committed run trained and committed again")
	}
	// The same run id and releases with another output would train a
	// second model with fresh noise for free: refused.
	moved := strings.Replace(job, filepath.Join(dir, "out"), filepath.Join(dir, "out2"), 1)
	os.WriteFile(cfg, []byte(moved), 0o644)
	if code, _, msg := run(t, args...); code != 2 || !strings.Contains(msg, "run-x") {
		t.Errorf("same run id, another output: exit %d (%s), want 2 naming the run", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "out2")); err == nil {
		t.Errorf("the refused run wrote to the other output")
	}
	os.WriteFile(cfg, []byte(job+"evaluation: {curve: true, curve_epsilons: [1, 2]}\n"), 0o644)
	if code, _, msg := run(t, args...); code != 2 || !strings.Contains(msg, "run-x") {
		t.Errorf("same run id with a curve added: exit %d (%s), want 2 naming the run", code, msg)
	}
	if after, _ := os.ReadFile(manifest); string(after) != string(before) {
		t.Errorf("the refused run committed")
	}
	id, err := budget.Identity(context.Background(), filepath.Join(dir, "shop", "events"), "", dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ledgerOf(t, filepath.Join(dir, "ledger")).Records(context.Background(), id)
	if err != nil || len(recs) != 1 {
		t.Errorf("%d ledger records (%v), want 1", len(recs), err)
	}
}

// A new month grants no fresh budget over the same events: a run on
// 2026-12-01 whose 30-day window reaches into an exhausted November is
// refused, and budget show reports each period.
func TestTrainBudgetFollowsTheDataWindow(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	events, ledger := filepath.Join(dir, "shop", "events"), filepath.Join(dir, "ledger")
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\ninteractions: {window_days: 30}\nmodel: {dim: 8, accountant: rdp, epsilon: 4, epochs: 1}\ntop_k: 5\nbudget: {ledger: %s, epsilon: 4, delta: 1.0e-5, period: month}\n",
		events, filepath.Join(dir, "out"), ledger)), 0o644)
	if code, _, msg := run(t, "train", "--config", cfg, "--logical-date", "2026-11-27"); code != 0 {
		t.Fatalf("November: %d %s", code, msg)
	}
	if code, _, msg := run(t, "train", "--config", cfg, "--logical-date", "2026-12-01"); code != 3 || !strings.Contains(msg, "2026-11") {
		t.Errorf("December over November's events: exit %d (%s), want 3 for period 2026-11", code, msg)
	}
	code, out, msg := run(t, "budget", "show", events, "--ledger", ledger, "--epsilon", "4", "--delta", "1e-5", "--period", "month", "--date", "2026-11-03")
	if code != 0 || !strings.Contains(out, "per period") || !strings.Contains(out, "2026-10") || !strings.Contains(out, "2026-10,2026-11") {
		t.Errorf("budget show: %d %s\n%s", code, msg, out)
	}
}
