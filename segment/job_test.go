package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment/kmeans"
	"github.com/veil-privacy/veil/segment/kmeans/kmeanstest"
)

var ctx = context.Background()

// blobs returns n points around k centres spread in d dimensions, and the
// true label of each.
func blobs(n, d, k int, spread float64, seed uint64) (*kmeans.Matrix, []int) {
	data, truth := kmeanstest.Blobs(n, d, k, spread, seed)
	return &kmeans.Matrix{N: n, D: d, Data: data}, truth
}

func shop(t *testing.T, subjects, days int) (string, *synth.Shop) {
	t.Helper()
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days, cfg.Groups = subjects, 300, days, 5
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(ctx, store, "", "test"); err != nil {
		t.Fatal(err)
	}
	return dir, s
}

var logical = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func TestRunEndToEnd(t *testing.T) {
	dir, s := shop(t, 3000, 20)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "5"
	cfg.Floor = Floor{MinSize: 60, Small: "merge"}
	cfg.NoisySizes = 4
	cfg.Budget = &BudgetConfig{Ledger: filepath.Join(dir, "ledger"), Policy: budget.Policy{Epsilon: 3, Delta: 1e-6, Period: "month"}}
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without DP k-means, noisy sizes are no DP release: nothing is
	// charged, and the run says it is not DP.
	if rep.Subjects == 0 || rep.Cohorts == 0 || rep.Exported == 0 || rep.Spent != nil || rep.NotDP == "" || rep.Filter.RowsKept == 0 {
		t.Fatalf("report %+v", rep)
	}
	// No cohort below the floor; noisy sizes present.
	for _, p := range rep.Profiles {
		if p.Size < 60 || p.NoisySize == nil || p.Explanation == "" {
			t.Errorf("profile %+v", p)
		}
	}
	// The export is committed, and holds only subjects who allow both
	// segmentation and marketing.
	store, _ := dataset.NewFileStore(dir)
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
	if err != nil || len(m.Files) != 10 || m.Class != dataset.ClassRelease {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	sheet := datasheet(t, rep)
	for _, want := range []string{"## Motivation", "## Composition", "## Collection process", "## Preprocessing", "## Uses", "## Distribution", "## Maintenance and retention",
		"There are 5 cohorts.", "not differentially private", "no privacy budget was charged", "within 180 days", "kept by the data steward"} {
		if !strings.Contains(sheet, want) {
			t.Errorf("datasheet lacks %q:\n%s", want, sheet)
		}
	}
	for _, p := range rep.Profiles {
		if !strings.Contains(sheet, p.Explanation) {
			t.Errorf("datasheet lacks cohort %d's explanation", p.CohortID)
		}
	}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Key, ".png") {
			data, _ := dataset.ReadAll(ctx, ref.Store, ref.Key+"/"+f.Key)
			if img, err := png.Decode(bytes.NewReader(data)); err != nil || img.Bounds().Dx() < 300 {
				t.Errorf("%s is not a readable plot: %v", f.Key, err)
			}
		}
	}
	ix, _ := privacy.BuildConsentIndex(ctx, privacy.DefaultPolicy(),
		&dataset.Ref{Store: store, Key: "shop/consent"}, &dataset.Ref{Store: store, Key: "shop/erasure"}, logical)
	keys, _ := dataset.Inputs(ctx, ref, dataset.Window{})
	var assigned []dataset.CohortAssignment
	for _, k := range keys {
		if !strings.Contains(k, "assignments") {
			continue
		}
		f, err := dataset.OpenParquet(ctx, ref.Store, k, dataset.CohortAssignmentsContract)
		if err != nil {
			t.Fatal(err)
		}
		dataset.ReadRows(ctx, f, func(rows []dataset.CohortAssignment) error { assigned = append(assigned, rows...); return nil })
		f.Close()
	}
	if len(assigned) != rep.Exported {
		t.Fatalf("%d rows exported, report says %d", len(assigned), rep.Exported)
	}
	group := map[string]int{}
	for i := range 3000 {
		group[s.Token(i)] = s.Group(i)
	}
	byCohort := map[int64]map[int]int{}
	for _, a := range assigned {
		if r := ix.Decide(a.SubjectID, []string{privacy.Segmentation, privacy.Marketing}); r != privacy.Keep {
			t.Fatalf("exported %s, which is %v", a.SubjectID, r)
		}
		if byCohort[a.CohortID] == nil {
			byCohort[a.CohortID] = map[int]int{}
		}
		byCohort[a.CohortID][group[a.SubjectID]]++
	}
	// The planted taste groups show through: the purity of the cohorts (the
	// share of subjects in their cohort's most common group) is well above
	// that of the same cohorts drawn at random, about the largest group's
	// share.
	var top, total int
	groupTotals := map[int]int{}
	for _, g := range byCohort {
		best := 0
		for grp, n := range g {
			total += n
			best = max(best, n)
			groupTotals[grp] += n
		}
		top += best
	}
	largest := 0
	for _, n := range groupTotals {
		largest = max(largest, n)
	}
	purity, chance := float64(top)/float64(total), float64(largest)/float64(total)
	if purity < 1.5*chance {
		t.Errorf("cohort purity %.2f is not well above chance %.2f: %v", purity, chance, byCohort)
	}
	t.Logf("cohort purity %.2f (chance %.2f), silhouette %.3f", purity, chance, rep.Silhouette)
	for _, bad := range []string{fmt.Sprintf("%d exported customers", rep.Exported), fmt.Sprintf("describe %d customers", rep.Subjects), "contributors.bloom"} {
		if strings.Contains(sheet, bad) {
			t.Errorf("datasheet of a run with noisy sizes gives %q", bad)
		}
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Errorf("a run without DP k-means charged the budget: %d records", n)
	}
	// Under DP k-means the ledger records the release; a budget too small
	// for another run refuses it before anything is read or written.
	cfg.Privacy = &kmeans.DPConfig{Epsilon: 1, Delta: 1e-6, Iterations: 4, Accountant: "rdp"}
	cfg.Budget.Dataset = "shop"
	dp1, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil || dp1.Spent == nil {
		t.Fatalf("DP run: %+v, %v", dp1, err)
	}
	cfg.Budget.Policy.Epsilon = 1.1 * dp1.Spent.Epsilon // two runs compose to more (about √2 times)
	before, _ := os.ReadDir(filepath.Join(dir, "out", "dt=2026-11-27"))
	if _, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil); !errors.Is(err, budget.ErrExhausted) {
		t.Errorf("second run on a small budget: %v, want ErrExhausted", err)
	}
	after, _ := os.ReadDir(filepath.Join(dir, "out", "dt=2026-11-27"))
	if len(after) != len(before) {
		t.Error("a refused run left output")
	}
}

func TestAutoK(t *testing.T) {
	dir, _ := shop(t, 1500, 15)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans = KMeansConfig{K: "auto", KMin: 2, KMax: 6, NInit: 2, MaxIter: 50, Seed: 3}
	cfg.Floor = Floor{MinSize: 20, Small: "suppress"}
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	best, bestK := -2.0, 0
	for k, s := range rep.KScores {
		if s > best {
			best, bestK = s, k
		}
	}
	if len(rep.KScores) != 5 || rep.K != bestK {
		t.Errorf("k %d, scores %v", rep.K, rep.KScores)
	}
}

func TestFloor(t *testing.T) {
	x := kmeans.NewMatrix(10, 1)
	copy(x.Data, []float32{0, 0.1, 0.2, 0.3, 5, 5.1, 5.2, 9, 20, 20.1})
	labels := []int32{0, 0, 0, 0, 1, 1, 1, 1, 2, 2}
	cohorts, suppressed, err := ApplyFloor(x, labels, 3, Floor{MinSize: 3, Small: "merge"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cohorts) != 2 || len(suppressed) != 0 || len(cohorts[1].Members) != 6 || cohorts[1].Note == "" {
		t.Errorf("merge: %+v", cohorts)
	}
	cohorts, suppressed, _ = ApplyFloor(x, labels, 3, Floor{MinSize: 3, Small: "suppress"})
	if len(cohorts) != 2 || len(suppressed) != 2 {
		t.Errorf("suppress: %+v, %v", cohorts, suppressed)
	}
	if _, _, err := ApplyFloor(x, labels, 3, Floor{MinSize: 11, Small: "merge"}); !errors.Is(err, ErrInput) {
		t.Errorf("floor above the population: %v", err)
	}
	for _, fl := range []Floor{{0, "merge"}, {3, "drop"}} {
		if _, _, err := ApplyFloor(x, labels, 3, fl); !errors.Is(err, ErrConfig) {
			t.Errorf("floor %+v: %v", fl, err)
		}
	}
}

func TestExplain(t *testing.T) {
	names := []Feature{{Name: "category_03", Description: "home/decor"}}
	got := explain([]TopFeature{
		{Feature: "recency_days", Z: -1.2, Value: 9, Population: 40},
		{Feature: "net_spend", Z: 1.4, Value: 320, Population: 80},
		{Feature: "category_03", Description: "home/decor", Z: 2.1},
	}, names)
	want := "Bought recently (about 9 days ago on average); spends well above average (320 vs 80); shops for home/decor often."
	if got != want {
		t.Errorf("explain = %q, want %q", got, want)
	}
	if explain(nil, nil) != "Close to the average customer." {
		t.Error("empty explanation")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"unknown key":    "events: a\noutput: b\ncolour: red\n",
		"no events":      "output: b\n",
		"bad k":          "events: a\noutput: b\nkmeans: {k: many}\n",
		"bad auto range": "events: a\noutput: b\nkmeans: {k: auto, k_min: 5, k_max: 3}\n",
		"dp no budget":   "events: a\noutput: b\nkmeans: {k: \"3\"}\nnoisy_sizes_sigma: 3\nprivacy: {epsilon: 1, delta: 1.0e-6}\n",
		"floor":          "events: a\noutput: b\ncohort_floor: {min_size: -5}\n",
		"bad budget":     "events: a\noutput: b\nnoisy_sizes_sigma: 3\nbudget: {ledger: l, epsilon: -1, delta: 1e-6}\n",
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(doc), 0o644)
		if _, err := LoadConfig(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, f := range []string{"../configs/segment.yaml", "../configs/segment-dp.yaml"} {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("the shipped config %s: %v", f, err)
		}
	}
}

func TestFeaturesBounded(t *testing.T) {
	dir, _ := shop(t, 300, 10)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	pol := privacy.DefaultPolicy()
	ix, _ := privacy.BuildConsentIndex(ctx, pol, &dataset.Ref{Store: store, Key: "consent"}, &dataset.Ref{Store: store, Key: "erasure"}, logical)
	build := func(max int) *Features {
		flt, _ := privacy.NewFilter(pol, ix, []string{privacy.Segmentation})
		cfg := DefaultFeatureConfig()
		cfg.MaxEvents = max
		f, err := BuildFeatures(ctx, pol, flt, dataset.Ref{Store: store, Key: "events"}, cfg, logical, 2)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	all, bounded := build(100000), build(5)
	if bounded.Bounded == 0 || bounded.Events >= all.Events || len(bounded.Subjects) != len(all.Subjects) {
		t.Fatalf("bounded %d subjects, %d vs %d events", bounded.Bounded, bounded.Events, all.Events)
	}
	for i := range bounded.Raw.N {
		row := bounded.Raw.Row(i)
		if n := row[fViews] + row[fCarts] + row[fPurchases] + row[fReturns]; n > 5 {
			t.Fatalf("subject %d has %v events after bounding to 5", i, n)
		}
	}
	// The same seed samples the same events.
	again := build(5)
	if again.Events != bounded.Events {
		t.Error("contribution bounding is not deterministic")
	}
}

// datasheet reads the datasheet of a run's output.
func datasheet(t *testing.T, rep *Report) string {
	t.Helper()
	ref, _ := open.Ref(context.Background(), rep.Output, dataset.URLOptions{})
	m, err := dataset.ReadManifest(context.Background(), ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if strings.HasPrefix(f.Key, "datasheet-") {
			data, err := dataset.ReadAll(context.Background(), ref.Store, ref.Key+"/"+f.Key)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
	t.Fatalf("no datasheet in %s", rep.Output)
	return ""
}
