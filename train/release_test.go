package train

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/train/mf"
)

// census is every file a DP training run commits, by class (DESIGN.md,
// "What leaves veil"): a file not in it, or of another class, fails the
// census test.
var census = map[string]string{
	"item_factors.parquet":    dataset.ClassRelease,
	"item_factors.arrow":      dataset.ClassRelease,
	"recommendations.parquet": dataset.ClassRelease,
	"nonpersonalized.parquet": dataset.ClassRelease,
	"model_card.json":         dataset.ClassRelease,
	"model_card.md":           dataset.ClassRelease,
	"steward_report.json":     dataset.ClassSteward,
	"model_card_steward.md":   dataset.ClassSteward,
	"privacy_utility.png":     dataset.ClassSteward,
	"exposure.png":            dataset.ClassSteward,
	"contributors.bloom":      dataset.ClassSteward,
	"contributors.key":        dataset.ClassSteward, // the filter's own key when no steward key is configured
}

// committedFile is a file of a committed output, by the name it was
// written as (its key without the write id).
type committedFile struct {
	output, name, key, class string
	manifest                 *dataset.Manifest
}

// committed walks dir for committed outputs and lists their files.
func committed(t *testing.T, dir string) []committedFile {
	t.Helper()
	var files []committedFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != dataset.ManifestName {
			return err
		}
		prefix := filepath.Dir(p)
		store, _ := dataset.NewFileStore(prefix)
		m, err := dataset.VerifyManifest(context.Background(), store, "")
		if err != nil {
			return err
		}
		for _, f := range m.Files {
			name := strings.Replace(f.Key, "-"+m.WriteID, "", 1)
			files = append(files, committedFile{output: prefix, name: name, key: filepath.Join(prefix, f.Key), class: f.Class, manifest: m})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// releaseRun trains a DP job with the curve and the audit on a small shop
// and returns its report and the outputs it committed (the shop's own
// tables left out).
func releaseRun(t *testing.T, dir string, cfg JobConfig) (*Report, []committedFile) {
	t.Helper()
	rep, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []committedFile
	for _, f := range committed(t, dir) {
		if !strings.HasPrefix(f.output, filepath.Join(dir, "shop")) {
			out = append(out, f)
		}
	}
	return rep, out
}

func releaseConfig(dir string) JobConfig {
	cfg := jobConfig(dir)
	cfg.Evaluation.Curve, cfg.FactorsArrow, cfg.NonPersonalized = true, true, true
	cfg.Evaluation.CurveEpsilons = []float64{2, 4}
	ac := mf.DefaultAuditConfig()
	ac.Canaries, ac.CanaryItems = 100, 5
	cfg.Evaluation.PrivacyAudit = &ac
	cfg.Model.Epochs = 2
	return cfg
}

// TestReleaseCensus checks every file a DP training run commits against
// the census: releases only under the output, steward files only in the
// steward report, and no exact count of the private data in a release.
func TestReleaseCensus(t *testing.T) {
	dir := shop(t, 700)
	cfg := releaseConfig(dir)
	rep, files := releaseRun(t, dir, cfg)
	outPrefix := filepath.Join(dir, "out")
	var release, steward int
	for _, f := range files {
		want, ok := census[f.name]
		if !ok {
			t.Errorf("%s: %s is not in the census", f.output, f.name)
			continue
		}
		if f.class != want {
			t.Errorf("%s: %s is of class %q, want %q", f.output, f.name, f.class, want)
		}
		under := strings.HasPrefix(f.output, outPrefix+string(filepath.Separator))
		switch want {
		case dataset.ClassRelease:
			release++
			if f.manifest.Class != dataset.ClassRelease || !under {
				t.Errorf("release file %s in %s (output class %q)", f.name, f.output, f.manifest.Class)
			}
		case dataset.ClassSteward:
			steward++
			if under || f.manifest.Class != dataset.ClassSteward {
				t.Errorf("steward file %s in %s (output class %q): a steward file under the release prefix", f.name, f.output, f.manifest.Class)
			}
		}
	}
	if release != 6 || steward != 6 {
		t.Errorf("%d release and %d steward files, want 6 and 6", release, steward)
	}
	// The exact counts of the private data appear in no release file.
	exact := map[string]int64{"subjects": int64(rep.Subjects), "items": int64(rep.Items), "interactions": int64(rep.Interactions),
		"rows read": rep.Filter.RowsRead, "rows kept": rep.Filter.RowsKept, "subjects recommended": int64(rep.Recommended)}
	for reason, n := range rep.Filter.RowsDropped {
		exact["rows dropped: "+reason] = n
	}
	number := regexp.MustCompile(`[0-9][0-9.eE+-]*`)
	reported := map[string]bool{}
	for _, f := range files {
		if !strings.HasPrefix(f.output, outPrefix+string(filepath.Separator)) || !(strings.HasSuffix(f.name, ".json") || strings.HasSuffix(f.name, ".md")) {
			continue
		}
		text, err := os.ReadFile(f.key)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range number.FindAllStringIndex(string(text), -1) {
			tok := string(text[loc[0]:loc[1]])
			v, err := strconv.ParseFloat(strings.TrimRight(tok, ".-+eE"), 64)
			if err != nil {
				continue
			}
			for what, n := range exact {
				if n >= 10 && v == float64(n) && !reported[f.name+what] {
					reported[f.name+what] = true
					t.Errorf("%s holds %s, the exact count of %s: …%s…", f.name, tok, what, text[max(0, loc[0]-120):min(len(text), loc[1]+40)])
				}
			}
		}
		for _, word := range []string{"Recall", "NDCG", "Gini", "gradient norm", "gradient_norm", "clipped_share", "gradients clipped", "membership inference", "guessed", "AUC", "rows read", "rows_read"} {
			if strings.Contains(string(text), word) {
				t.Errorf("release file %s mentions %q: evaluation and diagnostics belong to the steward report", f.name, word)
			}
		}
	}
	if t.Failed() {
		t.Logf("exact counts %v", exact)
	}
}

// TestNeighbouringReleases trains twice, on the shop and on the shop less
// one subject (erased): the release files, their columns and the public
// card's fields are the same; only noisy values differ. Without a public
// catalog the item universe depends on the data, so item ids and row
// counts are not compared.
func TestNeighbouringReleases(t *testing.T) {
	dir := shop(t, 600)
	cfgA := releaseConfig(dir)
	cfgA.RunID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	cfgA.Output, cfgA.Budget.Ledger = filepath.Join(dir, "a", "out"), filepath.Join(dir, "a", "ledger")
	_, filesA := releaseRun(t, filepath.Join(dir, "a"), cfgA)

	// The neighbour: one subject who got recommendations asks for erasure.
	var recs []dataset.Recommendation
	for _, f := range filesA {
		if f.name == RecommendationsFile {
			var err error
			if recs, err = parquet.ReadFile[dataset.Recommendation](f.key); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(recs) == 0 {
		t.Fatal("no recommendations to pick a subject from")
	}
	erased, err := parquet.ReadFile[dataset.Erasure](firstParquet(t, filepath.Join(dir, "shop", "erasure")))
	if err != nil {
		t.Fatal(err)
	}
	erased = append(erased, dataset.Erasure{SubjectID: recs[0].SubjectID, RequestedAt: logical.AddDate(0, 0, -3)})
	writeErasure(t, filepath.Join(dir, "erasure-b"), erased)
	cfgB := cfgA
	cfgB.Erasure = filepath.Join(dir, "erasure-b")
	cfgB.Output, cfgB.Budget = filepath.Join(dir, "b", "out"), &budget.Config{Ledger: filepath.Join(dir, "b", "ledger"), Policy: cfgA.Budget.Policy}
	repB, filesB := releaseRun(t, filepath.Join(dir, "b"), cfgB)
	if repB.Filter.SubjectsDropped["erased"] == 0 && repB.Filter.RowsDropped["erased"] == 0 {
		t.Logf("filter of the neighbour: %+v", repB.Filter)
	}

	releases := func(files []committedFile, out string) map[string]committedFile {
		m := map[string]committedFile{}
		for _, f := range files {
			if strings.HasPrefix(f.output, out+string(filepath.Separator)) {
				m[f.name] = f
			}
		}
		return m
	}
	ra, rb := releases(filesA, cfgA.Output), releases(filesB, cfgB.Output)
	names := func(m map[string]committedFile) []string {
		var s []string
		for n := range m {
			s = append(s, n)
		}
		slices.Sort(s)
		return s
	}
	if !slices.Equal(names(ra), names(rb)) || len(ra) == 0 {
		t.Fatalf("release files differ: %v and %v", names(ra), names(rb))
	}
	for name, a := range ra {
		b := rb[name]
		switch {
		case strings.HasSuffix(name, ".parquet"):
			if sa, sb := parquetColumns(t, a.key), parquetColumns(t, b.key); !slices.Equal(sa, sb) {
				t.Errorf("%s: columns %v and %v", name, sa, sb)
			}
		case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".md"):
			// The public card holds only the plan, the settings and the
			// guarantee: the same for both, but for where it is stored.
			ta, tb := readText(t, a.key), readText(t, b.key)
			ta = strings.ReplaceAll(ta, filepath.Join(dir, "a"), "DIR")
			tb = strings.ReplaceAll(tb, filepath.Join(dir, "b"), "DIR")
			if ta != tb {
				t.Errorf("%s differs between neighbouring datasets:\n--- with the subject\n%s\n--- without\n%s", name, ta, tb)
			}
		}
	}
	if js, ok := ra[CardJSONFile]; ok {
		if err := lineagetest.ValidateCard("..", []byte(readText(t, js.key))); err != nil {
			t.Errorf("public card does not validate: %v", err)
		}
	}
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parquetColumns(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range pf.Schema().Columns() {
		cols = append(cols, strings.Join(c, "."))
	}
	return cols
}

func firstParquet(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(m) != 1 {
		t.Fatalf("%s: %v", dir, m)
	}
	return m[0]
}

func writeErasure(t *testing.T, dir string, rows []dataset.Erasure) {
	t.Helper()
	ctx := context.Background()
	store, _ := dataset.NewFileStore(dir)
	out, err := dataset.NewOutput(ctx, store, "", dataset.ErasureContract, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.PutParquet(ctx, out, "part-00000.parquet", rows); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestChargeAgreesWithLedger: the steward report and the public card state
// the ledger's charge for the run (the record's ε at its δ, to the last
// digit) and its breakdown by release, and the model's own guarantee apart.
func TestChargeAgreesWithLedger(t *testing.T) {
	dir := shop(t, 500)
	cfg := releaseConfig(dir)
	_, files := releaseRun(t, dir, cfg)
	store, _ := dataset.NewFileStore(cfg.Budget.Ledger)
	id, err := cfg.Identity(context.Background(), dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := budget.Open(store, "").Records(context.Background(), id)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ledger: %v, %v", recs, err)
	}
	rec := recs[0]
	byName := map[string]string{}
	for _, f := range files {
		byName[f.name] = f.key
	}
	// The steward report.
	var sr struct {
		Charged struct {
			Epsilon  float64 `json:"epsilon"`
			Delta    float64 `json:"delta"`
			Releases []struct {
				Release string  `json:"release"`
				Epsilon float64 `json:"epsilon"`
			} `json:"releases"`
		} `json:"budget_charged"`
		Guarantee struct {
			Epsilon float64 `json:"epsilon"`
		} `json:"model_guarantee"`
	}
	if err := json.Unmarshal([]byte(readText(t, byName["steward_report.json"])), &sr); err != nil {
		t.Fatalf("steward report: %v", err)
	}
	if sr.Charged.Epsilon != rec.Epsilon || sr.Charged.Delta != rec.Delta {
		t.Errorf("steward report charges (ε %v, δ %v), the ledger (ε %v, δ %v)", sr.Charged.Epsilon, sr.Charged.Delta, rec.Epsilon, rec.Delta)
	}
	// model, two curve points, the audit's run: each a histogram, DP-SGD
	// and partition selection
	if len(sr.Charged.Releases) != 12 {
		t.Errorf("breakdown %+v: want 12 releases", sr.Charged.Releases)
	}
	// The public card: the charge and each release as metrics.
	var card struct {
		Q struct {
			M []struct{ Type, Value, Slice string } `json:"performance_metrics"`
		} `json:"quantitative_analysis"`
	}
	if err := json.Unmarshal([]byte(readText(t, byName[CardJSONFile])), &card); err != nil {
		t.Fatal(err)
	}
	full := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	found := map[string]bool{}
	for _, m := range card.Q.M {
		if strings.HasPrefix(m.Slice, "budget charged") && m.Type == "ε" {
			found["charge"] = m.Value == full(rec.Epsilon)
		}
		if strings.HasPrefix(m.Slice, "budget charged") && m.Type == "δ" {
			found["delta"] = m.Value == full(rec.Delta)
		}
		for _, r := range sr.Charged.Releases {
			if m.Slice == "release: "+r.Release && m.Type == "ε" {
				found[r.Release] = m.Value == full(r.Epsilon)
			}
		}
		if m.Slice == "this model's own guarantee" && m.Type == "ε" {
			found["guarantee"] = m.Value == full(sr.Guarantee.Epsilon)
		}
	}
	if len(found) != 3+len(sr.Charged.Releases) || slices.Contains(mapValues(found), false) {
		t.Errorf("card metrics %+v against the ledger (ε %v, δ %v): %v", card.Q.M, rec.Epsilon, rec.Delta, found)
	}
	md := readText(t, byName[CardMarkdownFile])
	if !strings.Contains(md, full(rec.Epsilon)) {
		t.Errorf("card Markdown lacks the charge ε %s:\n%s", full(rec.Epsilon), md)
	}
}

func mapValues(m map[string]bool) []bool {
	var v []bool
	for _, b := range m {
		v = append(v, b)
	}
	return v
}
