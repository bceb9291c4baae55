package segment

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment/kmeans"
)

func TestRunDP(t *testing.T) {
	dir, _ := shop(t, 3000, 20)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "5"
	cfg.Floor = Floor{MinSize: 50, Small: "merge"}
	cfg.NoisySizes = 3
	cfg.Privacy = &kmeans.DPConfig{Epsilon: 4, Delta: 1e-6, Iterations: 6}
	cfg.Budget = &BudgetConfig{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "total"}}
	// A catalog that is not there is refused before anything is spent.
	bad := cfg
	bad.Catalog = filepath.Join(dir, "no-catalog")
	if _, err := Run(ctx, bad, logical, dataset.URLOptions{}, nil); err == nil {
		t.Fatal("a DP run with a missing catalog ran")
	}
	if n := ledgerLen(t, dir); n != 0 {
		t.Fatalf("the refused run spent: %d ledger records", n)
	}
	cfg.Catalog = filepath.Join(dir, "shop", "catalog")
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DP == nil || rep.DP.Epsilon > 4 || rep.DP.NormalizedObjective < 0.9 || rep.Cohorts == 0 || rep.Exported == 0 {
		t.Fatalf("report %+v %+v", rep, rep.DP)
	}
	for _, p := range rep.Profiles {
		if p.NoisySize == nil || *p.NoisySize < 50 {
			t.Errorf("profile %+v below the floor by its noisy size", p)
		}
		// Category features are named by the catalog's categories.
		for _, tf := range p.Top {
			if strings.HasPrefix(tf.Feature, "category_") && strings.HasPrefix(tf.Description, "category bucket") {
				t.Errorf("cohort %d explained by %s %q with a catalog", p.CohortID, tf.Feature, tf.Description)
			}
		}
		t.Logf("cohort %d, about %d: %s", p.CohortID, *p.NoisySize, p.Explanation)
	}
	store, _ := dataset.NewFileStore(dir)
	recs, err := budget.Open(store, "ledger").Records(ctx, "shop")
	if err != nil || len(recs) != 1 || len(recs[0].Events) != 2 {
		t.Fatalf("ledger %+v, %v", recs, err)
	}
	// The datasheet travels with the export: under DP it gives noisy sizes
	// and no exact count of the clustered subjects.
	sheet := datasheet(t, rep)
	if !strings.Contains(sheet, "about ") || !strings.Contains(sheet, "differential privacy with ε = ") || strings.Contains(sheet, fmt.Sprint(rep.Subjects)) {
		t.Errorf("DP datasheet:\n%s", sheet)
	}
	t.Logf("DP k-means ε %.3f: normalized objective %.3f, %d cohorts", rep.DP.Epsilon, rep.DP.NormalizedObjective, rep.Cohorts)
	// A fixed k is required, and noisy sizes.
	bad = cfg
	bad.KMeans.K = "auto"
	if err := bad.Validate(); err == nil {
		t.Error("DP with k auto accepted")
	}
	bad = cfg
	bad.NoisySizes = 0
	if err := bad.Validate(); err == nil {
		t.Error("DP without noisy sizes accepted")
	}
}

// Category features of DP runs are named by the public catalog: the
// categories that hash into each bucket, or by number without a catalog.
func TestNameBucketsByCatalog(t *testing.T) {
	cats := []string{"books/fiction", "fashion/shoes", "toys/games"}
	names := featureNames(make([]map[string]int64, 8))
	nameBucketsByCatalog(names, cats, 8)
	got := map[string]string{}
	for _, n := range names {
		got[n.Name] = n.Description
	}
	for _, c := range cats {
		name := fmt.Sprintf("category_%02d", categoryBucket(c, 8))
		if !strings.Contains(got[name], c) {
			t.Errorf("%s: %q, want it to name %s", name, got[name], c)
		}
	}
	empty := 0
	for name, d := range got {
		if strings.HasSuffix(d, "(no catalog category)") {
			empty++
		} else if strings.HasPrefix(name, "category_") && strings.HasPrefix(d, "category bucket") {
			t.Errorf("%s: %q", name, d)
		}
	}
	if empty < 8-len(cats) {
		t.Errorf("%d buckets without a category, want at least %d: %v", empty, 8-len(cats), got)
	}
	nameBucketsByCatalog(names, nil, 8)
	if d := names[len(names)-1].Description; d != "category bucket 07" {
		t.Errorf("without a catalog: %q", d)
	}
}

// With two cohorts every z-score against the centres' spread is ±1: a DP
// cohort is explained by a feature only where its centre differs visibly
// (minVisible) and beyond its noise.
func TestDPProfilesNeedAVisibleDifference(t *testing.T) {
	f := &Features{Names: []Feature{{Name: "purchases", Kind: "count"}}}
	cohorts := []Cohort{{ID: 0, Cluster: 0, NoisySize: 100}, {ID: 1, Cluster: 1, NoisySize: 100}}
	for _, c := range []struct {
		a, b, sumNoise float64
		explained      bool
	}{
		{0.30, 0.32, 0, false},   // 0.01 from the mean: invisible
		{0.20, 0.50, 100, false}, // 0.15 from the mean, noise 2 per centre
		{0.20, 0.50, 1, true},    // noise 0.02 per centre
	} {
		centres := kmeans.NewMatrix(2, 1)
		centres.Data[0], centres.Data[1] = float32(c.a), float32(c.b)
		for _, p := range DPProfiles(f, DefaultFeatureConfig(), centres, cohorts, []int64{100, 100}, c.sumNoise) {
			if got := len(p.Top) > 0; got != c.explained {
				t.Errorf("centres %v, %v, noise %v: cohort %d explained %v: %q", c.a, c.b, c.sumNoise, p.CohortID, got, p.Explanation)
			}
		}
	}
}
