package segment

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
)

// Features built from per-row-group partials merged in any grouping and
// order (as a distributed engine does) equal BuildFeatures' to the bit, on
// one worker or several, with heavy subjects sampled down.
func TestPartialsMergeToBuildFeatures(t *testing.T) {
	dir, _ := shop(t, 400, 20)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	pol := privacy.DefaultPolicy()
	ix, _ := privacy.BuildConsentIndex(ctx, pol, &dataset.Ref{Store: store, Key: "consent"}, &dataset.Ref{Store: store, Key: "erasure"}, logical)
	events := dataset.Ref{Store: store, Key: "events"}
	cfg := DefaultFeatureConfig()
	cfg.MaxEvents = 12 // many heavy subjects
	newFilter := func() *privacy.Filter {
		flt, err := privacy.NewFilter(pol, ix, []string{privacy.Segmentation})
		if err != nil {
			t.Fatal(err)
		}
		return flt
	}
	one, err := BuildFeatures(ctx, pol, newFilter(), events, cfg, logical, 1)
	if err != nil {
		t.Fatal(err)
	}
	four, err := BuildFeatures(ctx, pol, newFilter(), events, cfg, logical, 4)
	if err != nil {
		t.Fatal(err)
	}
	if one.Bounded == 0 {
		t.Fatal("no subject was sampled down: the test needs heavy subjects")
	}
	if !slices.Equal(one.Raw.Data, four.Raw.Data) || !slices.Equal(one.Regions, four.Regions) || one.Events != four.Events {
		t.Fatal("features depend on the number of workers")
	}

	// The distributed way: a partial per (row group, subject), merged in
	// random groups and orders.
	flt := newFilter()
	dec, _ := NewEventDecoder(cfg)
	sc, err := privacy.FilteredScan(ctx, pol, flt, events, dec.Columns())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var parts []map[string]*SubjectPartial
	names := map[int32]map[string]int64{}
	var b dataset.Batch
	var keep []bool
	var rows privacy.RowCounts
	marks := map[string]privacy.SubjectMark{}
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &b); err != nil {
			t.Fatal(err)
		}
		var tally privacy.Tally
		if keep, tally, err = flt.Classify(&b, keep); err != nil {
			t.Fatal(err)
		}
		for r, n := range tally.Rows {
			rows[r] += n
		}
		for s, m := range tally.Marks {
			marks[s] = marks[s].Merge(m)
		}
		parts = append(parts, dec.Partials(&b, keep, names))
	}
	// The filter report from tallies combined outside the filter is the
	// one BuildFeatures' filter kept.
	if got := flt.ReportOf(rows, maps.Values(marks)); !reflect.DeepEqual(got, one.Filter) {
		t.Errorf("report from tallies:\n%+v\nfrom the filter:\n%+v", got, one.Filter)
	}
	if r := flt.Report(); r.RowsRead != 0 {
		t.Errorf("Classify counted into the filter: %+v", r)
	}
	if len(parts) < 4 {
		t.Fatalf("%d row groups: the test needs several", len(parts))
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	// Combine in two levels, as combiner lifting does.
	merged := map[string]*SubjectPartial{}
	for lo := 0; lo < len(parts); {
		hi := min(len(parts), lo+1+r.IntN(3))
		group := map[string]*SubjectPartial{}
		for _, m := range parts[lo:hi] {
			for s, p := range m {
				if group[s] == nil {
					group[s] = &SubjectPartial{}
				}
				group[s].Merge(p, cfg.MaxEvents)
			}
		}
		for s, p := range group {
			if merged[s] == nil {
				merged[s] = &SubjectPartial{}
			}
			merged[s].Merge(p, cfg.MaxEvents)
		}
		lo = hi
	}
	end, windowDays := FeatureWindow(flt, logical)
	if len(merged) != len(one.Subjects) {
		t.Fatalf("%d subjects from partials, %d from BuildFeatures", len(merged), len(one.Subjects))
	}
	bounded := 0
	for i, s := range one.Subjects {
		p := merged[s]
		if p == nil {
			t.Fatalf("subject %s has no partial", s)
		}
		row, heavy := p.Row(cfg, end, windowDays)
		if heavy {
			bounded++
		}
		for j, v := range row {
			if math.Float32bits(v) != math.Float32bits(one.Raw.Row(i)[j]) {
				t.Fatalf("subject %s feature %s: %v from partials, %v from BuildFeatures", s, one.Names[j].Name, v, one.Raw.Row(i)[j])
			}
		}
		if p.Region != one.Regions[i] {
			t.Fatalf("subject %s: region %q from partials, %q from BuildFeatures", s, p.Region, one.Regions[i])
		}
	}
	if bounded != one.Bounded {
		t.Errorf("%d subjects bounded from partials, %d from BuildFeatures", bounded, one.Bounded)
	}
	if got := FeatureNames(cfg, names); !slices.Equal(got, one.Names) {
		t.Errorf("feature names differ:\n%v\n%v", got, one.Names)
	}
}

// A prepared table reads back as the features it was built from, and a
// rerun replaces it atomically.
func TestPrepareRoundTrip(t *testing.T) {
	dir, _ := shop(t, 500, 10)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "unused")
	out := filepath.Join(dir, "prepared")
	rep, err := Prepare(ctx, cfg, logical, out, 3, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFiltered(ctx, cfg, logical, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := BuildFeatures(ctx, f.Inputs.Policy, f.Filter, f.Inputs.Events, cfg.Features, logical, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	got, grep, err := ReadPrepared(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Subjects, want.Subjects) || !slices.Equal(got.Raw.Data, want.Raw.Data) || !slices.Equal(got.Regions, want.Regions) ||
		!slices.Equal(got.Names, want.Names) || !slices.Equal(got.X.Data, want.X.Data) {
		t.Fatal("the prepared table does not read back as the features")
	}
	if grep.Subjects != len(want.Subjects) || grep.Filter.RowsKept != want.Filter.RowsKept || grep.Shards != 3 {
		t.Errorf("report %+v", grep)
	}
	m, _ := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if len(m.Files) != 5 || m.Contract != "subject_features" {
		t.Errorf("manifest: %d files, contract %q", len(m.Files), m.Contract)
	}
	// Each subject is in its shard.
	for _, mf := range m.Files {
		var shard int
		if _, err := fmt.Sscanf(mf.Key, "part-%05d-", &shard); err != nil {
			continue
		}
		pf, err := dataset.OpenParquet(ctx, ref.Store, dataset.Join(ref.Key, mf.Key), dataset.SubjectFeaturesContract)
		if err != nil {
			t.Fatal(err)
		}
		dataset.ReadRows(ctx, pf, func(rs []dataset.SubjectFeatures) error {
			for _, r := range rs {
				if Shard(r.SubjectID, 3) != shard {
					t.Errorf("%s in shard %d", r.SubjectID, shard)
				}
			}
			return nil
		})
		pf.Close()
	}
	if _, err := Prepare(ctx, cfg, logical, out, 0, dataset.URLOptions{}, nil); err == nil {
		t.Error("0 shards accepted")
	}
}

// Models come from files users hand to assign: no input makes decoding,
// checking or scoring with an accepted model panic, and an accepted model
// assigns a row to one of its centroids.
func FuzzParseModel(f *testing.F) {
	f.Add([]byte(`{"features":[{"name":"a"},{"name":"b"}],"mean":[0,1],"std":[1,0],"centroids":[[0,0],[1,1]]}`))
	f.Add([]byte(`{"features":[{"name":"a"}],"mean":[0],"std":[1],"centroids":[[0,0]]}`))
	f.Add([]byte(`{"features":[],"centroids":[]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModel(data)
		if err != nil {
			return
		}
		d := len(m.Features)
		raw := make([]float32, d)
		for j := range raw {
			raw[j] = float32(j) * 3.5
		}
		c, dist := m.Assign(raw, make([]float32, d))
		if c < 0 || c >= len(m.Centroids) || dist < 0 {
			t.Fatalf("assigned to %d at %v", c, dist)
		}
	})
}

// A prepared table carries its events' identity, whatever budget.dataset
// the job declares: releases over it charge the events' budget.
func TestPrepareCarriesTheEventsIdentity(t *testing.T) {
	dir, _ := shop(t, 200, 5)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "unused")
	cfg.Budget = &BudgetConfig{Dataset: "other"}
	rep, err := Prepare(ctx, cfg, logical, filepath.Join(dir, "prepared"), 2, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	es, _ := dataset.NewFileStore(cfg.Events)
	events, err := dataset.ReadManifest(ctx, es, "")
	if err != nil || events.Identity == "" {
		t.Fatalf("events manifest %+v, %v", events, err)
	}
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil || m.Identity != events.Identity {
		t.Errorf("the prepared table carries identity %q (%v), want the events' %s", m.Identity, err, events.Identity)
	}
}

// Count counts the rows Decode yields, per subject, from the subject and
// type columns alone; DecodeIndexed yields the same events as Decode.
func TestCountAgreesWithDecode(t *testing.T) {
	dir, _ := shop(t, 200, 5)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	pol := privacy.DefaultPolicy()
	ix, _ := privacy.BuildConsentIndex(ctx, pol, &dataset.Ref{Store: store, Key: "consent"}, &dataset.Ref{Store: store, Key: "erasure"}, logical)
	flt, err := privacy.NewFilter(pol, ix, []string{privacy.Segmentation})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewEventDecoder(DefaultFeatureConfig())
	sc, err := privacy.FilteredScan(ctx, pol, flt, dataset.Ref{Store: store, Key: "events"}, dec.Columns())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var b dataset.Batch
	var keep []bool
	events := 0
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &b); err != nil {
			t.Fatal(err)
		}
		if keep, _, err = flt.Classify(&b, keep); err != nil {
			t.Fatal(err)
		}
		dict := b.Column("subject_id").Str.Dict
		want := make([]int32, len(dict))
		type event struct {
			x                int32
			e                FeatureEvent
			region, category string
		}
		var decoded, indexed []event
		dec.Decode(&b, keep, func(x int32, e FeatureEvent, region, category string) {
			want[x]++
			decoded = append(decoded, event{x, e, region, category})
		})
		reg, cat := b.Column("region").Str, b.Column("category").Str
		dec.DecodeIndexed(&b, keep, func(x int32, e FeatureEvent, r, c int32) {
			ev := event{x: x, e: e}
			if r >= 0 {
				ev.region = reg.Dict[r]
			}
			if c >= 0 {
				ev.category = cat.Dict[c]
			}
			indexed = append(indexed, ev)
		})
		got := make([]int32, len(dict))
		dec.Count(&b, keep, got)
		if !slices.Equal(got, want) {
			t.Fatalf("row group %d: Count %v, Decode %v", u.RowGroup, got, want)
		}
		if !slices.Equal(decoded, indexed) {
			t.Fatalf("row group %d: DecodeIndexed differs from Decode", u.RowGroup)
		}
		events += len(decoded)
	}
	if events == 0 {
		t.Fatal("no event decoded: the test needs some")
	}
}
