package segment

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
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

// exportedPerCohort counts the rows of each cohort in a release's
// assignments.csv.
func exportedPerCohort(t *testing.T, output string) map[string]int {
	t.Helper()
	_, files, _ := releaseFiles(t, output)
	rows, err := csv.NewReader(strings.NewReader(string(files["assignments.csv"]))).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("assignments.csv: %v", err)
	}
	n := map[string]int{}
	for _, r := range rows[1:] {
		n[r[1]]++
	}
	return n
}

// The cohort floor holds on the export itself: no cohort of the
// assignments has fewer exported subjects (exact) than min_size, whatever
// sizes the floor was decided on (here exact cluster sizes, which count
// subjects who do not allow marketing). A withheld cohort is in the
// steward report, with the reason.
func TestExportFloorOnExactExportedCount(t *testing.T) {
	dir, _ := shop(t, 1500, 10)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.Steward = filepath.Join(dir, "steward")
	cfg.KMeans.K = "4"
	cfg.Floor = Floor{MinSize: 1, Small: "merge"}
	cfg.RunID = "probe"
	probe, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The floor at the smallest cohort's size merges nothing (k-means is
	// seeded: the same cohorts), and that cohort has members who do not
	// allow marketing, so fewer exported subjects than the floor.
	small := probe.Profiles[0]
	for _, p := range probe.Profiles {
		if p.Size < small.Size {
			small = p
		}
	}
	got := exportedPerCohort(t, probe.Output)
	if got[fmt.Sprint(small.CohortID)] >= small.Size {
		t.Skipf("cohort %d: all %d members allow marketing; the test needs some who do not", small.CohortID, small.Size)
	}
	cfg.Floor.MinSize, cfg.RunID = small.Size, "floor"
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Profiles) != len(probe.Profiles) {
		t.Fatalf("%d cohorts, the probe %d", len(rep.Profiles), len(probe.Profiles))
	}
	for c, n := range exportedPerCohort(t, rep.Output) {
		if n < cfg.Floor.MinSize {
			t.Errorf("cohort %s exported with %d subjects, below the floor of %d", c, n, cfg.Floor.MinSize)
		}
	}
	// The steward report says which cohort was withheld and why.
	ref, _ := open.Ref(ctx, rep.StewardReport, dataset.URLOptions{})
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	for _, f := range m.Files {
		if strings.HasPrefix(f.Key, "steward_report") {
			b, _ := dataset.ReadAll(ctx, ref.Store, ref.Key+"/"+f.Key)
			json.Unmarshal(b, &st)
		}
	}
	w, _ := st["withheld_cohorts"].([]any)
	found := false
	for _, x := range w {
		if c, _ := x.(map[string]any); c != nil && c["cohort_id"] == float64(small.CohortID) && c["reason"] != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("steward report does not name cohort %d as withheld: %v", small.CohortID, st["withheld_cohorts"])
	}
}

// The datasheet of a DP run says plainly that the assignments list real
// customers and are no DP release, and makes no claim that the export
// reveals almost nothing about a customer.
func TestDatasheetAssignmentsNotDP(t *testing.T) {
	cfg := dpConfig(t.TempDir())
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", NoisySizes: true,
		DP: &DPReport{Epsilon: 1, Delta: 1e-6, Accountant: "rdp", Iterations: 4, ClipRadius: 1}}
	sheet := string(Datasheet(rep, cfg, privacy.DefaultPolicy(), []string{privacy.Segmentation}, []string{privacy.Marketing}))
	if strings.Contains(sheet, "almost nothing") {
		t.Error("datasheet claims the export reveals almost nothing about any one customer")
	}
	for _, want := range []string{"not a DP release", "real customers", "Only the cohort centres, the profiles and the noisy sizes are differentially private",
		"counted exactly"} {
		if !strings.Contains(sheet, want) {
			t.Errorf("datasheet lacks %q", want)
		}
	}
}
