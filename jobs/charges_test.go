package jobs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/release"
)

const chargeSpec = `name: p
purposes: [segmentation, marketing, personalization]
state: st
steps:
  - name: seg
    segment:
      events: shop/events
      output: out/seg
      kmeans: {k: "4", seed: 1}
      noisy_sizes_sigma: 5
      privacy: {epsilon: 1, delta: 1.0e-6, iterations: 6, clip_radius: 1.5, accountant: pld}
      budget: {ledger: ledger, epsilon: 40, delta: 1.0e-5, period: month}
  - name: recs
    depends_on: [seg]
    train:
      events: shop/events
      output: out/models
      model: {epsilon: 8, delta: 1.0e-6}
      evaluation: {holdout_last: 2, curve: true, curve_epsilons: [1, 2], privacy_audit: {canaries: 100}}
      budget: {ledger: ledger, epsilon: 40, delta: 1.0e-5, period: month}
`

// The plan lists every DP release of the pipeline (noisy sizes, DP k-means
// iterations, DP-SGD, each curve point, the audit's model), each with its
// own ε, and composes them into the one charge the ledger will record.
func TestPlanListsEveryRelease(t *testing.T) {
	spec, err := ParseSpec("p.yaml", []byte(chargeSpec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Charges) != 1 {
		t.Fatalf("%d charges, want 1 (one budget)", len(p.Charges))
	}
	c := p.Charges[0]
	var whats []string
	for _, r := range c.Releases {
		whats = append(whats, r.Step+": "+r.What)
	}
	// Each training run (the model, two curve points, the audit's run)
	// releases the DP item histogram, DP-SGD and, without a catalog, DP
	// partition selection.
	want := []string{"seg: noisy cohort sizes", "seg: DP k-means"}
	for _, run := range []string{"", "privacy-utility curve point ε 1: ", "privacy-utility curve point ε 2: ", "one-run privacy audit"} {
		for _, r := range []string{"histogram", "DP-SGD", "partition selection"} {
			want = append(want, "recs: "+run+"…"+r)
		}
	}
	if len(c.Releases) != len(want) {
		t.Fatalf("releases %q, want one per %q", whats, want)
	}
	for i, w := range want {
		prefix, rest, _ := strings.Cut(w, "…")
		if !strings.HasPrefix(whats[i], prefix) || !strings.Contains(whats[i], rest) {
			t.Errorf("release %d is %q, want %q", i, whats[i], w)
		}
	}
	all, err := accountant.Spent(c.Accountant, c.Delta, c.AllEvents()...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Epsilon != all.Epsilon || c.Delta != 1e-5 {
		t.Errorf("charge ε %v at δ %v, the accountant composes ε %v at δ 1e-5", c.Epsilon, c.Delta, all.Epsilon)
	}
	// The step totals compose their own releases; the training step's
	// total is far above the model's own ε 8 (curve and audit models).
	if got := p.Steps[1].Epsilon; !(got > 8) || math.Abs(got-c.Epsilon) < 1e-9 {
		t.Errorf("recs step ε %v, want its releases composed (above the model's 8, below the pipeline's %v)", got, c.Epsilon)
	}
	for _, s := range p.Steps {
		for _, r := range s.Releases {
			if s.Step == "recs" && strings.Contains(r, "k-means") {
				t.Errorf("training release labelled k-means: %q", r)
			}
		}
	}
}

// Two steps that spend from one budget with different policies are a spec
// error: one budget has one policy.
func TestPlanRefusesTwoPoliciesForOneBudget(t *testing.T) {
	doc := strings.Replace(chargeSpec, "{ledger: ledger, epsilon: 40, delta: 1.0e-5, period: month}\n  - name: recs", "{ledger: ledger, epsilon: 30, delta: 1.0e-5, period: month}\n  - name: recs", 1)
	spec, err := ParseSpec("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakePlan(spec); err == nil || !strings.Contains(err.Error(), "one budget has one policy") {
		t.Fatalf("err = %v, want one budget, one policy", err)
	}
}

// Under a policy that sets budgets the plan charges the steward's budget:
// steps need no budget section, and one that states another is refused.
func TestPlanChargesThePolicysBudget(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "shop", "events")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\ntcf: {vendor_id: 1}\npurposes:\n"+
		"  segmentation: {tcf_purposes: [3], columns: [subject_id, event_time], retention_days: 30}\n"+
		"  marketing: {tcf_purposes: [4], columns: [subject_id, event_time], retention_days: 30}\n"+
		"  personalization: {tcf_purposes: [6], columns: [subject_id, event_time, item_id], retention_days: 30}\n"+
		"budgets:\n  %q: {ledger: %q, epsilon: 40, delta: 1.0e-5, period: month}\n", "file://"+events, filepath.Join(dir, "ledger"))), 0o644)
	doc := strings.NewReplacer("events: shop/events", "events: "+events+"\n      policy: "+policy,
		"      budget: {ledger: ledger, epsilon: 40, delta: 1.0e-5, period: month}\n", "").Replace(chargeSpec)
	spec, err := ParseSpec("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Charges) != 1 || p.Charges[0].Ledger != filepath.Join(dir, "ledger") || p.Charges[0].Budget.Epsilon != 40 || !strings.HasPrefix(p.Charges[0].SetBy, "policy "+policy+" (sha256 ") {
		t.Fatalf("charges %+v", p.Charges)
	}
	for _, s := range p.Steps {
		if !strings.Contains(s.Budget, "set by the policy "+policy) {
			t.Errorf("step %s: budget %q does not say who set it", s.Step, s.Budget)
		}
	}
	// A step that states another budget is refused, naming both.
	doc = strings.Replace(doc, "      policy: "+policy+"\n      output: out/models", "      policy: "+policy+"\n      output: out/models\n      budget: {ledger: elsewhere, epsilon: 400, delta: 1.0e-5, period: month}", 1)
	spec, err = ParseSpec("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakePlan(spec); !errors.Is(err, release.ErrBudgetConflict) || !strings.Contains(err.Error(), "elsewhere") || !strings.Contains(err.Error(), "recs") {
		t.Errorf("a step with another budget: %v", err)
	}
}
