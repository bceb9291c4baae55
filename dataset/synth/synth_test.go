package synth_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
)

func generate(t *testing.T, cfg synth.Config) (*synth.Shop, dataset.Store, synth.Stats) {
	t.Helper()
	shop, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := dataset.NewMemStore(t.Name())
	st, err := shop.Write(context.Background(), s, "shop", "test")
	if err != nil {
		t.Fatal(err)
	}
	return shop, s, st
}

func small() synth.Config {
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = 600, 200, 10
	return cfg
}

// Same seed, same bytes, whatever the number of workers.
func TestDeterministic(t *testing.T) {
	cfg := small()
	_, s1, st1 := generate(t, cfg)
	cfg.Workers = 1
	_, s2, st2 := generate(t, cfg)
	if st1 != st2 {
		t.Fatalf("stats differ: %+v vs %+v", st1, st2)
	}
	for _, table := range []string{"events", "consent", "erasure", "truth"} {
		m1, err := dataset.ReadManifest(context.Background(), s1, "shop/"+table)
		if err != nil {
			t.Fatal(err)
		}
		m2, _ := dataset.ReadManifest(context.Background(), s2, "shop/"+table)
		if len(m1.Files) != len(m2.Files) {
			t.Fatalf("%s: %d vs %d files", table, len(m1.Files), len(m2.Files))
		}
		for i := range m1.Files {
			if m1.Files[i].SHA256 != m2.Files[i].SHA256 {
				t.Errorf("%s: file %d differs between runs of the same seed", table, i)
			}
		}
	}
	cfg.Seed = 2
	_, _, st3 := generate(t, cfg)
	if st3 == st1 {
		t.Error("another seed made the same shop")
	}
}

func TestShopLooksLikeAShop(t *testing.T) {
	cfg := small()
	cfg.Subjects, cfg.Days = 1500, 20
	shop, s, st := generate(t, cfg)
	ctx := context.Background()
	keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "shop/events"}, dataset.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != cfg.Days {
		t.Fatalf("%d partitions, want %d", len(keys), cfg.Days)
	}
	sc, err := dataset.OpenScan(ctx, s, keys, dataset.EventsContract)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	group := map[string]int{}
	for i := range cfg.Subjects {
		group[shop.Token(i)] = shop.Group(i)
	}
	types := map[string]int{}
	items := map[string]int{}
	// category counts of purchases and views per taste group
	catByGroup := make([]map[string]int, cfg.Groups)
	for g := range catByGroup {
		catByGroup[g] = map[string]int{}
	}
	var b dataset.Batch
	var rows int64
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &b); err != nil {
			t.Fatal(err)
		}
		day, _, _ := dataset.Partition(sc.Keys[u.File])
		times := b.Column("event_time").Int
		for i := range b.Rows {
			typ, _ := b.Column("event_type").Str.At(i)
			types[typ]++
			item, _ := b.Column("item_id").Str.At(i)
			items[item]++
			sub, _ := b.Column("subject_id").Str.At(i)
			cat, ok := b.Column("category").Str.At(i)
			if !ok {
				t.Fatal("event without category")
			}
			catByGroup[group[sub]][cat]++
			ts := time.UnixMicro(times[i]).UTC()
			if ts.Before(day) || !ts.Before(day.AddDate(0, 0, 1)) {
				t.Fatalf("event at %s in partition %s", ts, day.Format(time.DateOnly))
			}
			if q := b.Column("value"); typ == "view" && !q.Null(i) {
				t.Fatal("a view has a value")
			}
			if typ == "return" && b.Column("quantity").Int[i] >= 0 {
				t.Fatal("a return with non-negative quantity")
			}
		}
		rows += int64(b.Rows)
	}
	if rows != st.Events {
		t.Fatalf("scanned %d events, generated %d", rows, st.Events)
	}
	// Funnel: views > carts > purchases > returns > 0.
	if !(types["view"] > types["add_to_cart"] && types["add_to_cart"] > types["purchase"] && types["purchase"] > types["return"] && types["return"] > 0) {
		t.Errorf("funnel is off: %v", types)
	}
	// Zipf popularity: the top 10% of items take far more than 10% of events.
	counts := make([]int, 0, len(items))
	for _, c := range items {
		counts = append(counts, c)
	}
	top := topShare(counts, len(counts)/10)
	if top < 0.3 {
		t.Errorf("top 10%% of items have %.2f of events; popularity is not skewed", top)
	}
	// Taste groups: the favourite category of each group differs from the
	// population's share of that category by a wide margin.
	total := map[string]int{}
	var all int
	for _, m := range catByGroup {
		for c, n := range m {
			total[c] += n
			all += n
		}
	}
	for g, m := range catByGroup {
		var best string
		var n int
		var sum int
		for c, k := range m {
			sum += k
			if k > n {
				best, n = c, k
			}
		}
		share, popShare := float64(n)/float64(sum), float64(total[best])/float64(all)
		if share < 2*popShare {
			t.Errorf("group %d: favourite %s has share %.2f vs %.2f in the population; no taste structure", g, best, share, popShare)
		}
	}
	if st.Consent < int64(cfg.Subjects)*3 || st.Erasure > int64(cfg.Subjects)/50 {
		t.Errorf("consent %d, erasure %d for %d subjects", st.Consent, st.Erasure, cfg.Subjects)
	}
}

func topShare(counts []int, k int) float64 {
	// partial selection of the k largest
	var sum, top int
	for _, c := range counts {
		sum += c
	}
	sorted := append([]int(nil), counts...)
	for i := 0; i < k; i++ {
		m := i
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] > sorted[m] {
				m = j
			}
		}
		sorted[i], sorted[m] = sorted[m], sorted[i]
		top += sorted[i]
	}
	return float64(top) / math.Max(1, float64(sum))
}

func TestConsentLedger(t *testing.T) {
	cfg := small()
	cfg.Subjects = 3000
	_, s, _ := generate(t, cfg)
	ctx := context.Background()
	keys, _ := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "shop/consent"}, dataset.Window{})
	f, err := dataset.OpenParquet(ctx, s, keys[0], dataset.ConsentContract)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	status := map[string]int{}
	source := map[string]int{}
	granted := map[string][2]int{} // jurisdiction -> marketing granted, asked
	err = dataset.ReadRows(ctx, f, func(rows []dataset.Consent) error {
		for _, r := range rows {
			status[r.Status]++
			source[r.Source]++
			if r.Purpose != nil && *r.Purpose == "marketing" && r.Source != "gpc" && r.Status != "withdrawn" {
				g := granted[*r.Jurisdiction]
				g[1]++
				if r.Status == "granted" {
					g[0]++
				}
				granted[*r.Jurisdiction] = g
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"granted", "denied", "withdrawn"} {
		if status[st] == 0 {
			t.Errorf("no %s records: %v", st, status)
		}
	}
	if source["gpc"] == 0 {
		t.Errorf("no GPC opt-outs: %v", source)
	}
	rate := func(j string) float64 { return float64(granted[j][0]) / float64(granted[j][1]) }
	// Opt-in regimes grant marketing far less often than opt-out ones.
	if !(rate("GDPR") < 0.55 && rate("CCPA") > 0.8) {
		t.Errorf("marketing grant rates GDPR %.2f, CCPA %.2f", rate("GDPR"), rate("CCPA"))
	}
}

func TestBadConfig(t *testing.T) {
	for _, mod := range []func(*synth.Config){
		func(c *synth.Config) { c.Subjects = 0 },
		func(c *synth.Config) { c.Items = 3 },
		func(c *synth.Config) { c.Days = 0 },
		func(c *synth.Config) { c.SessionRate = math.NaN() },
		func(c *synth.Config) { c.Groups = 0 },
	} {
		cfg := synth.DefaultConfig()
		mod(&cfg)
		if _, err := synth.New(cfg); err == nil {
			t.Errorf("config %+v was accepted", cfg)
		}
	}
}
