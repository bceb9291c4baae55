package segment

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/budget"
)

// veil segment assign with noisy sizes is a non-DP run like veil segment
// without privacy: it charges nothing (the model is exact), says so, commits
// a release with no exact figure (noisy sizes only) and the exact figures in
// a steward report; no cohort of its export has fewer subjects than the
// floor.
func TestAssignNoisySizesChargesNothingAndReleasesNoExact(t *testing.T) {
	dir, _ := shop(t, 1500, 10)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.Steward = filepath.Join(dir, "steward")
	cfg.KMeans.K = "5"
	cfg.Floor = Floor{MinSize: 150, Small: "merge"}
	prep, err := Prepare(ctx, cfg, logical, filepath.Join(dir, "prepared"), 2, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := open.Ref(ctx, prep.Output, dataset.URLOptions{})
	m, _, err := Fit(ctx, cfg, ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoisySizes = 3
	cfg.Budget = &BudgetConfig{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "total"}}
	rep, err := AssignPrepared(ctx, cfg, logical, prep.Output, m, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Errorf("assign charged the ledger for noisy sizes next to an exact model: %d records", n)
	}
	_, files, cols := releaseFiles(t, rep.Output)
	rref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	man, err := dataset.ReadManifest(ctx, rref.Store, rref.Key)
	if err != nil || man.Class != dataset.ClassRelease {
		t.Errorf("assign output class %q (%v), want %q", man.Class, err, dataset.ClassRelease)
	}
	var sizes []map[string]any
	if err := json.Unmarshal(files[CohortSizesFile], &sizes); err != nil || len(sizes) == 0 {
		t.Fatalf("%s: %v", CohortSizesFile, err)
	}
	for _, c := range sizes {
		if _, ok := c["size"]; ok {
			t.Errorf("released %s holds an exact size: %v", CohortSizesFile, c)
		}
		if _, ok := c["noisy_size"]; !ok {
			t.Errorf("released %s lacks a noisy size: %v", CohortSizesFile, c)
		}
	}
	var pub map[string]any
	if err := json.Unmarshal(files[AssignReportFile], &pub); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subjects", "exported", "suppressed", "not_exported", "budget_spent"} {
		if v, ok := pub[k]; ok {
			t.Errorf("released %s holds %s: %v", AssignReportFile, k, v)
		}
	}
	if s, _ := pub["not_dp"].(string); !strings.Contains(s, "not differentially private") || !strings.Contains(s, "no privacy budget was charged") {
		t.Errorf("released report does not say it is not DP: %q", s)
	}
	// Exact figures: in the steward report, not next to the release.
	var loc struct {
		StewardReport string `json:"steward_report"`
	}
	b, _ := json.Marshal(rep)
	json.Unmarshal(b, &loc)
	if loc.StewardReport == "" || strings.HasPrefix(loc.StewardReport, rep.Output) {
		t.Fatalf("steward report at %q, release at %q", loc.StewardReport, rep.Output)
	}
	_, sfiles, _ := releaseFilesOfClass(t, loc.StewardReport, string(dataset.ClassSteward))
	var st AssignReport
	if err := json.Unmarshal(sfiles[AssignReportFile], &st); err != nil {
		t.Fatal(err)
	}
	if st.Subjects != rep.Subjects || st.Subjects == 0 || st.Exported != rep.Exported || len(st.Cohorts) == 0 || st.Cohorts[0].Size == 0 {
		t.Errorf("steward report %+v, run report %+v", st, rep)
	}
	// The floor on the exact export.
	per := map[int64]int{}
	for name := range cols {
		if !strings.HasPrefix(name, "assignments-") {
			continue
		}
		sref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
		for _, f := range man.Files {
			if strings.HasPrefix(f.Key, strings.TrimSuffix(name, ".parquet")) {
				pf, err := dataset.OpenParquet(ctx, sref.Store, dataset.Join(sref.Key, f.Key), dataset.CohortAssignmentsContract)
				if err != nil {
					t.Fatal(err)
				}
				dataset.ReadRows(ctx, pf, func(rs []dataset.CohortAssignment) error {
					for _, r := range rs {
						per[r.CohortID]++
					}
					return nil
				})
				pf.Close()
			}
		}
	}
	total := 0
	for c, n := range per {
		total += n
		if n < cfg.Floor.MinSize {
			t.Errorf("cohort %d exported with %d subjects, below the floor of %d", c, n, cfg.Floor.MinSize)
		}
	}
	if int64(total) != rep.Exported {
		t.Errorf("%d rows exported, the report says %d", total, rep.Exported)
	}
}

// releaseFilesOfClass is releaseFiles for an output of any class.
func releaseFilesOfClass(t *testing.T, output string, class string) (*dataset.Manifest, map[string][]byte, map[string][]string) {
	t.Helper()
	m, files, cols := releaseFiles(t, output)
	if string(m.Class) != class {
		t.Errorf("%s has class %q, want %q", output, m.Class, class)
	}
	return m, files, cols
}
