package segment

import (
	"fmt"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
)

// Whether a report releases exact counts is decided by the run's
// configuration, not by its profiles: a DP report without profiles keeps
// its exact counts out of Public and out of the datasheet.
func TestNoisyKeyedOnConfigNotProfiles(t *testing.T) {
	cfg := DefaultConfig()
	pol := privacy.DefaultPolicy()
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", Subjects: 4321, Events: 98765, Exported: 3210,
		Filter: privacy.Report{RowsRead: 123456, RowsKept: 98765},
		DP:     &DPReport{Epsilon: 1, Delta: 1e-6, Accountant: "rdp", Clipped: 77, NormalizedObjective: 1.5}}
	p := rep.Public()
	if p.Subjects != 0 || p.Events != 0 || p.Exported != 0 || p.Filter.RowsRead != 0 || p.DP.Clipped != 0 {
		t.Errorf("DP report without profiles: Public keeps exact counts: %+v", p)
	}
	sheet := string(Datasheet(rep, cfg, pol, []string{privacy.Segmentation}, []string{privacy.Marketing}))
	for _, n := range []string{"4321", "98765", "3210", "123456"} {
		if strings.Contains(sheet, n) {
			t.Errorf("DP datasheet without profiles gives the exact count %s", n)
		}
	}
}

// The datasheet of a DP run states what the ledger charged for the run
// (every release: the noisy sizes too), with its breakdown by release,
// beside DP k-means' own ε.
func TestDatasheetStatesLedgerCharge(t *testing.T) {
	cfg := dpConfig(t.TempDir())
	evs, acct, err := cfg.Releases()
	if err != nil {
		t.Fatal(err)
	}
	all, err := accountant.Spent(acct, cfg.Privacy.Delta, evs...)
	if err != nil {
		t.Fatal(err)
	}
	rec := budget.Record{Dataset: "shop", RunID: "r", Period: "total", Accountant: acct, Epsilon: all.Epsilon, Delta: cfg.Privacy.Delta, Events: evs}
	_, _, km, _ := cfg.Privacy.Plan()
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", NoisySizes: true, Spent: &rec,
		DP: &DPReport{Epsilon: km.Epsilon, Delta: cfg.Privacy.Delta, Accountant: acct, Iterations: cfg.Privacy.Iterations, ClipRadius: 1}}
	sheet := string(Datasheet(rep, cfg, privacy.DefaultPolicy(), []string{privacy.Segmentation}, []string{privacy.Marketing}))
	c, err := release.Breakdown(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !(rec.Epsilon > km.Epsilon) {
		t.Fatalf("the charge %v is not above DP k-means' ε %v: the test shows nothing", rec.Epsilon, km.Epsilon)
	}
	for _, want := range []string{fmt.Sprintf("ε = %.3g", rec.Epsilon), fmt.Sprintf("ε = %.3g", km.Epsilon)} {
		if !strings.Contains(sheet, want) {
			t.Errorf("datasheet does not state %q", want)
		}
	}
	for _, r := range c.Releases {
		if !strings.Contains(sheet, r.Release) || !strings.Contains(sheet, fmt.Sprintf("%.3g", r.Epsilon)) {
			t.Errorf("datasheet does not break the charge down: release %q (ε %.3g)", r.Release, r.Epsilon)
		}
	}
}
