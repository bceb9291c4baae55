package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/train/mf"
)

// TestNonPersonalizedList: a job with non_personalized writes one list,
// the same for every customer (no subject in it, labelled), ranked by the
// popularity prior of the run's DP histogram; the ledger holds one record
// with the same events as the run without the list (the histogram is
// charged once, the list costs nothing more); recommendations carry their
// reasons, each an item of the subject's own history; the card states the
// main parameters.
func TestNonPersonalizedList(t *testing.T) {
	dir := shop(t, 800)
	cfg := jobConfig(dir)
	cfg.Evaluation.Baselines, cfg.Evaluation.Curve = false, false
	cfg.NonPersonalized, cfg.TopK = true, 10
	plain := cfg
	plain.NonPersonalized = false
	plan, err := cfg.Model.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(releases(cfg, plan, nil), releases(plain, plan, nil)) {
		t.Fatal("the non-personalized list changes the run's planned releases")
	}
	ctx := context.Background()
	rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "ledger"))
	recs, err := budget.Open(store, "").Records(ctx, rep.Spent.Dataset)
	if err != nil || len(recs) != 1 || !slices.Equal(recs[0].Events, releases(plain, plan, nil)) {
		t.Fatalf("ledger: %d records (%v), want one with the plan's events %+v", len(recs), err, releases(plain, plan, nil))
	}
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		f, ok := m.Find(name)
		if !ok {
			t.Fatalf("release lacks %s", name)
		}
		b, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := read(NonPersonalizedFile)
	list, err := parquet.Read[dataset.NonPersonalized](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 {
		t.Fatalf("%d rows, want top_k 10", len(list))
	}
	for i, r := range list {
		if r.Rank != int64(i+1) || r.List != NonPersonalizedLabel || (i > 0 && r.Score > list[i-1].Score) {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// The same for everyone: it is the popularity ranking of the model's
	// items, which reads no subject's row.
	b = read(FactorsFile)
	factors, err := parquet.Read[dataset.ItemFactor](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, f := range factors {
		items = append(items, f.ItemID)
	}
	if want := nonPersonalized(items, rep.Training.Popularity, 10); !slices.Equal(list, want) {
		t.Errorf("list %v, want %v", list, want)
	}

	// Reasons: items of the subject's own (consented) history.
	d, _, err := LoadConsented(ctx, cfg.JobTables, cfg.Interactions, logical, 2, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]map[string]bool{}
	for s, rows := range d.Rows {
		own[d.Subjects[s]] = map[string]bool{}
		for _, x := range rows {
			own[d.Subjects[s]][d.Items[x.Item]] = true
		}
	}
	b = read(RecommendationsFile)
	rows, err := parquet.Read[dataset.ExplainedRecommendation](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	explainedAny := false
	for _, r := range rows {
		for _, it := range r.BecauseItems {
			explainedAny = true
			if !own[r.SubjectID][it] {
				t.Fatalf("%s: recommendation %s explained by %s, which it never touched", r.SubjectID, r.ItemID, it)
			}
		}
	}
	if !explainedAny {
		t.Error("no recommendation has a reason")
	}
	md := string(read(CardMarkdownFile))
	for _, want := range []string{"Main parameters: signals used", "signals never used", "Why each recommendation", "joint DP", NonPersonalizedFile, "withdraw consent"} {
		if !strings.Contains(md, want) {
			t.Errorf("card lacks %q", want)
		}
	}
}

// TestNonPersonalizedNeedsDP: the list ranks the DP item counts, so a
// non-private job (exact counts, every item of the data) or one without
// top_k cannot ask for it.
func TestNonPersonalizedNeedsDP(t *testing.T) {
	dir := t.TempDir()
	cfg := jobConfig(dir)
	cfg.NonPersonalized = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DP job with the list: %v", err)
	}
	open := cfg
	open.Model.Epsilon = math.Inf(1)
	if err := open.Validate(); !errors.Is(err, mf.ErrConfig) || !strings.Contains(err.Error(), "non_personalized") {
		t.Errorf("non-private job with the list: %v, want a config error naming non_personalized", err)
	}
	none := cfg
	none.TopK = 0
	if err := none.Validate(); !errors.Is(err, mf.ErrConfig) || !strings.Contains(err.Error(), "top_k") {
		t.Errorf("list without top_k: %v, want a config error naming top_k", err)
	}
}
