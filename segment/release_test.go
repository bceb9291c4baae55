package segment

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// dpConfig is a DP segmentation of the shop in dir whose cohorts are far
// above the floor, so that the structure of the release (cohort ids) does
// not hinge on the noise.
func dpConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "3"
	cfg.Floor = Floor{MinSize: 5, Small: "merge"}
	cfg.NoisySizes = 1
	cfg.Privacy = &kmeans.DPConfig{Epsilon: 8, Delta: 1e-6, Iterations: 4, Accountant: "rdp"}
	cfg.Budget = &BudgetConfig{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 1000, Delta: 1e-3, Period: "total"}}
	return cfg
}

func ledgerLen(t *testing.T, dir string) int {
	t.Helper()
	store, _ := dataset.NewFileStore(dir)
	recs, err := budget.Open(store, "ledger").Records(ctx, "shop")
	if err != nil && !errors.Is(err, dataset.ErrNotExist) {
		t.Fatal(err)
	}
	return len(recs)
}

// Every field is validated before the budget is spent: a negative floor is
// a configuration error that leaves the ledger untouched.
func TestFloorValidatedBeforeSpend(t *testing.T) {
	dir := t.TempDir()
	cfg := dpConfig(dir)
	for _, fl := range []Floor{{MinSize: -5, Small: "merge"}, {MinSize: 0, Small: "merge"}, {MinSize: 10, Small: "drop"}} {
		c := cfg
		c.Floor = fl
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("floor %+v: Validate %v, want ErrConfig", fl, err)
		}
		if _, err := Run(ctx, c, logical, dataset.URLOptions{}, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("floor %+v: Run %v, want ErrConfig", fl, err)
		}
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Errorf("invalid floors spent budget: %d ledger records", n)
	}
}

// A table that is not an events table (here the consent table) is found
// out from its footer before the budget is spent.
func TestWrongSchemaSpendsNothing(t *testing.T) {
	dir, _ := shop(t, 200, 5)
	cfg := dpConfig(dir)
	cfg.Events = filepath.Join(dir, "shop", "consent")
	cfg.Consent = filepath.Join(dir, "shop", "consent")
	cfg.Erasure = filepath.Join(dir, "shop", "erasure")
	_, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if !errors.Is(err, dataset.ErrSchema) {
		t.Fatalf("consent table as events: %v, want a schema error", err)
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Errorf("a wrong-schema table spent budget: %d ledger records", n)
	}
}

// releaseFiles reads a committed release: logical file name -> content,
// and the columns of its Parquet files.
func releaseFiles(t *testing.T, output string) (*dataset.Manifest, map[string][]byte, map[string][]string) {
	t.Helper()
	ref, err := open.Ref(ctx, output, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	files, cols := map[string][]byte{}, map[string][]string{}
	for _, f := range m.Files {
		ext := path.Ext(f.Key)
		name := strings.TrimSuffix(strings.TrimSuffix(f.Key, ext), "-"+m.WriteID) + ext
		data, err := dataset.ReadAll(ctx, ref.Store, ref.Key+"/"+f.Key)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
		if ext == ".parquet" {
			in, err := dataset.Inspect(ctx, dataset.Ref{Store: ref.Store, Key: ref.Key + "/" + f.Key})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range in.Schema {
				cols[name] = append(cols[name], c.Name)
			}
		}
	}
	return m, files, cols
}

func word(n int64) *regexp.Regexp { return regexp.MustCompile(fmt.Sprintf(`\b%d\b`, n)) }

// checkNoExact fails if a release carries an exact size or count.
func checkNoExact(t *testing.T, rep *Report, m *dataset.Manifest, files map[string][]byte, cols map[string][]string) {
	t.Helper()
	if m.Class != dataset.ClassRelease {
		t.Errorf("release output has class %q", m.Class)
	}
	for name := range files {
		if strings.Contains(name, "contributors") || strings.Contains(name, "steward") {
			t.Errorf("release holds %s", name)
		}
	}
	for name, c := range cols {
		if slices.Contains(c, "size") {
			t.Errorf("%s has an exact size column: %v", name, c)
		}
	}
	r, err := csv.NewReader(strings.NewReader(string(files["profiles.csv"]))).Read()
	if err != nil || slices.Contains(r, "size") || !slices.Contains(r, "noisy_size") {
		t.Errorf("profiles.csv header %v, %v", r, err)
	}
	var profiles []map[string]any
	if err := json.Unmarshal(files["profiles.json"], &profiles); err != nil || len(profiles) == 0 {
		t.Fatalf("profiles.json: %v", err)
	}
	for _, p := range profiles {
		if _, ok := p["size"]; ok {
			t.Errorf("profiles.json carries an exact size: %v", p)
		}
	}
	sheet := string(files[DatasheetFile])
	for what, n := range map[string]int64{"subjects": int64(rep.Subjects), "events": rep.Events, "rows read": rep.Filter.RowsRead,
		"rows kept": rep.Filter.RowsKept, "exported": int64(rep.Exported), "consent records": rep.Filter.Consent.Records} {
		if n > 20 && word(n).MatchString(sheet) {
			t.Errorf("datasheet gives the exact number of %s (%d)", what, n)
		}
	}
	for _, bad := range []string{"objective", "clipped (", "dropped (", "subjects clipped"} {
		if strings.Contains(sheet, bad) {
			t.Errorf("datasheet mentions %q", bad)
		}
	}
}

// sameNoise returns a noise factory whose n-th call gives the same stream
// in every factory made with the same seed: two runs then draw the same
// noise, and differ only by their data.
func sameNoise(seed uint64) func() rand.Source {
	var n uint64
	return func() rand.Source { n++; return dp.NewTestSource(seed ^ n<<20) }
}

// The neighbouring-dataset test of segmentation: a DP run on the shop and
// on the shop without one subject (from a small cohort) commit releases
// with the same files, columns and cohort ids; only noisy values differ,
// and no exact count appears. The exact figures are in the steward report.
// Both runs draw the same noise streams (in production every draw is fresh
// from the secure source): which cohorts pass the floor on noisy sizes is
// itself random, so two runs with fresh noise may keep different cohorts
// even on the same data.
func TestNeighbouringDPRelease(t *testing.T) {
	dir, _ := shop(t, 1500, 10)
	cfg := dpConfig(dir)
	cfg.noise = sameNoise(5)
	cfg.Steward = filepath.Join(dir, "state", "steward")
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m1, files1, cols1 := releaseFiles(t, rep.Output)
	checkNoExact(t, rep, m1, files1, cols1)

	// The steward report has the exact sizes and the contributors filter.
	sref, _ := open.Ref(ctx, rep.StewardReport, dataset.URLOptions{})
	sm, err := dataset.VerifyManifest(ctx, sref.Store, sref.Key)
	if err != nil || sm.Class != dataset.ClassSteward {
		t.Fatalf("steward report %s: %+v, %v", rep.StewardReport, sm, err)
	}
	if !strings.HasPrefix(rep.StewardReport, "file://"+cfg.Steward) {
		t.Errorf("steward report at %s, not under %s", rep.StewardReport, cfg.Steward)
	}
	mf, ok := sm.Find(StewardReportFile)
	if !ok {
		t.Fatalf("steward report lacks %s: %+v", StewardReportFile, sm.Files)
	}
	data, _ := dataset.ReadAll(ctx, sref.Store, sref.Key+"/"+mf.Key)
	var sr StewardReport
	if err := json.Unmarshal(data, &sr); err != nil || sr.Subjects != rep.Subjects || len(sr.Cohorts) != rep.Cohorts || sr.DP == nil {
		t.Fatalf("steward report %s: %+v, %v", data, sr, err)
	}
	if _, ok := sm.Find(ContributorsFile); !ok {
		t.Errorf("steward report lacks the contributors filter")
	}

	// Erase a subject of the smallest cohort: the second run is the
	// neighbouring dataset without that subject.
	small := slices.MinFunc(sr.Cohorts, func(a, b StewardCohort) int { return a.Size - b.Size })
	var victim string
	var rows []dataset.CohortAssignment
	for name, b := range files1 {
		if name == "assignments.csv" {
			recs, _ := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			for _, r := range recs[1:] {
				if r[1] == fmt.Sprint(small.CohortID) {
					victim = r[0]
					break
				}
			}
		}
	}
	if victim == "" {
		t.Fatalf("no exported subject in cohort %d", small.CohortID)
	}
	_ = rows
	store, _ := dataset.NewFileStore(dir)
	var erased []dataset.Erasure
	keys, _ := dataset.Inputs(ctx, dataset.Ref{Store: store, Key: "shop/erasure"}, dataset.Window{})
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, store, k, dataset.ErasureContract)
		if err != nil {
			t.Fatal(err)
		}
		dataset.ReadRows(ctx, f, func(rs []dataset.Erasure) error { erased = append(erased, rs...); return nil })
		f.Close()
	}
	erased = append(erased, dataset.Erasure{SubjectID: victim, RequestedAt: logical.Add(-48 * time.Hour)})
	out, _ := dataset.NewOutput(ctx, store, "erasure2", dataset.ErasureContract, "test")
	if err := dataset.PutParquet(ctx, out, "part-00000.parquet", erased); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.noise = sameNoise(5)
	cfg2.Erasure = filepath.Join(dir, "erasure2")
	cfg2.Output = filepath.Join(dir, "out2")
	rep2, err := Run(ctx, cfg2, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, files2, cols2 := releaseFiles(t, rep2.Output)
	checkNoExact(t, rep2, m2, files2, cols2)
	names := func(fs map[string][]byte) []string {
		var out []string
		for n := range fs {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	if a, b := names(files1), names(files2); !slices.Equal(a, b) {
		t.Errorf("files differ: %v vs %v", a, b)
	}
	for n, c := range cols1 {
		if !slices.Equal(c, cols2[n]) {
			t.Errorf("%s: columns %v vs %v", n, c, cols2[n])
		}
	}
	ids := func(ps []Profile) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.CohortID)
		}
		return out
	}
	if a, b := ids(rep.Profiles), ids(rep2.Profiles); !slices.Equal(a, b) {
		t.Errorf("cohort ids differ: %v vs %v", a, b)
	}
	if strings.Contains(string(files2["assignments.csv"]), victim) {
		t.Errorf("the erased subject %s is exported", victim)
	}
}

// A cohort is never explained by a feature on which it does not differ
// from the population as shown (cohort value 0 against population 0).
func TestExplanationsOnlyFromDifferences(t *testing.T) {
	f := &Features{Names: []Feature{{Name: "purchases"}, {Name: "category_17", Description: "category bucket 17"}}}
	cfg := DefaultFeatureConfig()
	centres := kmeans.NewMatrix(3, 2)
	// Category values are below zero in scaled units for every centre
	// (clipped to 0 in original units) but differ in scaled units.
	copy(centres.Data, []float32{0.9, -0.5, 0.1, -0.1, 0.5, -0.2})
	cohorts := []Cohort{{ID: 0, Cluster: 0, NoisySize: 100}, {ID: 1, Cluster: 1, NoisySize: 100}, {ID: 2, Cluster: 2, NoisySize: 100}}
	for _, p := range DPProfiles(f, cfg, centres, cohorts, []int64{100, 100, 100}, 0) {
		for _, tf := range p.Top {
			if tf.Value == tf.Population {
				t.Errorf("cohort %d explained by %s: %v against %v (%q)", p.CohortID, tf.Feature, tf.Value, tf.Population, p.Explanation)
			}
		}
		if strings.Contains(p.Explanation, "bucket 17") {
			t.Errorf("cohort %d: %q", p.CohortID, p.Explanation)
		}
	}
}

// veil segment fit refuses a DP job: fitting on the prepared table would
// release non-private centroids and exact feature statistics.
func TestFitAndAssignRefusePrivacy(t *testing.T) {
	dir := t.TempDir()
	cfg := dpConfig(dir)
	ref, _ := open.Ref(ctx, filepath.Join(dir, "prepared"), dataset.URLOptions{})
	if _, _, err := Fit(ctx, cfg, ref); !errors.Is(err, ErrConfig) {
		t.Errorf("fit with privacy: %v, want ErrConfig", err)
	}
	m := &Model{Features: []Feature{{Name: "a"}}, Mean: []float64{0}, Std: []float64{1}, Centroids: [][]float32{{0}}}
	if _, err := AssignPrepared(ctx, cfg, logical, filepath.Join(dir, "prepared"), m, dataset.URLOptions{}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("assign with privacy: %v, want ErrConfig", err)
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Errorf("refused fit and assign spent budget: %d records", n)
	}
}

// A DP run with white_box_audit audits its mechanisms before it spends or
// reads anything and states the audits' bounds in the public datasheet.
func TestWhiteBoxAuditInDatasheet(t *testing.T) {
	dir, _ := shop(t, 600, 5)
	cfg := dpConfig(dir)
	wc := DefaultWhiteBoxConfig()
	wc.Runs = 60
	cfg.WhiteBoxAudit = &wc
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.WhiteBox) != 2 {
		t.Fatalf("%d audits, want DP k-means and the noisy sizes", len(rep.WhiteBox))
	}
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := m.Find(DatasheetFile)
	sheet, _ := dataset.ReadAll(ctx, ref.Store, ref.Key+"/"+f.Key)
	for _, a := range rep.WhiteBox {
		if a.Err() != nil || !(a.EpsilonLowerBound > 0) {
			t.Errorf("%s: %v, bound %v", a.Mechanism, a.Err(), a.EpsilonLowerBound)
		}
		if row := fmt.Sprintf("| %s | %.4g | %.4g |", a.Mechanism, a.ProvenEpsilon, a.EpsilonLowerBound); !strings.Contains(string(sheet), row) {
			t.Errorf("datasheet lacks %q:\n%s", row, sheet)
		}
	}
}
