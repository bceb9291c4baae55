package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/segment/kmeans"
)

func TestSegmentKMeansCommand(t *testing.T) {
	dir := t.TempDir()
	x := kmeans.NewMatrix(3000, 3)
	for i := range x.Data {
		x.Data[i] = float32((i*7919)%1000)/100 + float32(i%3*10)
	}
	f, _ := os.Create(filepath.Join(dir, "x.npy"))
	segment.WriteNpy(f, x)
	f.Close()
	p, _ := os.Create(filepath.Join(dir, "x.parquet"))
	segment.WriteParquetMatrix(p, x, 1000)
	p.Close()
	init := &kmeans.Matrix{N: 2, D: 3, Data: x.Data[:6]}
	f, _ = os.Create(filepath.Join(dir, "init.npy"))
	segment.WriteNpy(f, init)
	f.Close()
	var first kmeansReport
	for i, args := range [][]string{
		{"--in", filepath.Join(dir, "x.npy"), "--k", "2", "--init", filepath.Join(dir, "init.npy")},
		{"--in", filepath.Join(dir, "x.parquet"), "--k", "2", "--init", filepath.Join(dir, "init.npy")},
		{"--in", filepath.Join(dir, "x.parquet"), "--k", "2", "--minibatch"},
	} {
		code, out, msg := run(t, append([]string{"segment", "kmeans", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, msg)
		}
		var r kmeansReport
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.N != 3000 || r.Inertia <= 0 {
			t.Fatalf("%v: %s", args, out)
		}
		if i == 0 {
			first = r
		} else if i == 1 && r.Inertia != first.Inertia {
			t.Errorf(".npy and Parquet inputs differ: %v vs %v", first.Inertia, r.Inertia)
		}
	}
	os.WriteFile(filepath.Join(dir, "bad.npy"), []byte("\x93NUMPYjunk"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--in", filepath.Join(dir, "x.npy"), "--k", "0"}, 2},
		{[]string{"--in", filepath.Join(dir, "x.npy"), "--k", "4000"}, 2},
		{[]string{"--in", filepath.Join(dir, "bad.npy"), "--k", "2"}, 1},
		{[]string{"--in", filepath.Join(dir, "x.npy"), "--k", "2", "--init", filepath.Join(dir, "x.npy")}, 2},
	} {
		if code, _, msg := run(t, append([]string{"segment", "kmeans"}, tc.args...)...); code != tc.code {
			t.Errorf("%v: exit %d (%s), want %d", tc.args, code, msg, tc.code)
		}
	}
}

func TestSegmentJobCommand(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "800", "--items", "200", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "seg.yaml")
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"4\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	code, out, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27")
	if code != 0 || !strings.Contains(out, "cohort 0") || !strings.Contains(out, "exported") {
		t.Fatalf("segment: %d %s\n%s", code, msg, out)
	}
	os.WriteFile(cfg, []byte("events: x\noutput: y\nkmeans: {k: many}\n"), 0o644)
	if code, _, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27"); code != 2 {
		t.Errorf("bad config: %d %s", code, msg)
	}
	if code, _, _ := run(t, "segment"); code != 2 {
		t.Errorf("no config: exit %d", code)
	}
}

func TestGenerateConsent(t *testing.T) {
	dir := t.TempDir()
	k := writeKey(t, dir, "k", 0o600)
	if code, _, msg := run(t, "pseudonymize", "--in", "testdata/online_retail_sample.csv", "--out", filepath.Join(dir, "retail", "events"), "--id-column", "CustomerID", "--key-file", k); code != 0 {
		t.Fatal(msg)
	}
	code, out, msg := run(t, "generate", "consent", "--events", filepath.Join(dir, "retail", "events"), "--out", filepath.Join(dir, "retail"), "--purposes", "segmentation,marketing", "--recorded-at", "2010-11-01")
	if code != 0 || !strings.Contains(out, "synthetic") {
		t.Fatalf("%d %s %s", code, msg, out)
	}
	code, out, _ = run(t, "datasets", "filter", filepath.Join(dir, "retail", "events"), "--purposes", "segmentation,marketing", "--logical-date", "2010-12-02", "--json")
	if code != 0 || !strings.Contains(out, `"rows_kept"`) || strings.Contains(out, `"rows_kept": 0`) {
		t.Errorf("filter after synthetic consent: %d %s", code, out)
	}
	if code, _, _ := run(t, "generate", "consent", "--events", filepath.Join(dir, "retail", "events"), "--out", dir, "--purposes", "advertising", "--recorded-at", "2010-11-01"); code != 2 {
		t.Errorf("unknown purpose: exit %d", code)
	}
}

// Subjects who withdraw or ask for erasure after an export are found by
// veil exports recheck, with the reason, and counted in the metric.
func TestExportsRecheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "800", "--items", "200", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "seg.yaml")
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"3\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	code, out, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27", "--json")
	if code != 0 {
		t.Fatal(msg)
	}
	var rep segment.Report
	json.Unmarshal([]byte(out), &rep)
	// Nothing to recall on the export's own date.
	code, out, msg = run(t, "exports", "recheck", "--config", cfg, "--logical-date", "2026-11-27", "--json")
	var rc segment.Recheck
	if code != 0 || json.Unmarshal([]byte(out), &rc) != nil || len(rc.Exports) != 1 || rc.Recall != 0 || rc.Subjects != rep.Exported {
		t.Fatalf("recheck on the export date: %d %s\n%s", code, msg, out)
	}
	// Two exported subjects change their minds on 2026-11-28, a third asks
	// for erasure: new consent and erasure tables with the extra records.
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, _ := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	f, _ := m.Find("assignments.parquet")
	pf, err := dataset.OpenParquet(ctx, ref.Store, dataset.Join(ref.Key, f.Key), dataset.CohortAssignmentsContract)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	dataset.ReadRows(ctx, pf, func(rows []dataset.CohortAssignment) error {
		for _, r := range rows {
			tokens = append(tokens, r.SubjectID)
		}
		return nil
	})
	pf.Close()
	shop, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	var consent []dataset.Consent
	keys, _ := dataset.Inputs(ctx, dataset.Ref{Store: shop, Key: "consent"}, dataset.Window{})
	for _, k := range keys {
		cf, err := dataset.OpenParquet(ctx, shop, k, dataset.ConsentContract)
		if err != nil {
			t.Fatal(err)
		}
		dataset.ReadRows(ctx, cf, func(rows []dataset.Consent) error { consent = append(consent, rows...); return nil })
		cf.Close()
	}
	later := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	marketing := "marketing"
	for _, tok := range tokens[:2] {
		consent = append(consent, dataset.Consent{SubjectID: tok, Purpose: &marketing, Status: "withdrawn", RecordedAt: later, Source: "cmp"})
	}
	put := func(name string, rows any) {
		o, err := dataset.NewOutput(ctx, shop, name, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		switch r := rows.(type) {
		case []dataset.Consent:
			err = dataset.PutParquet(ctx, o, "part.parquet", r)
		case []dataset.Erasure:
			err = dataset.PutParquet(ctx, o, "part.parquet", r)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("consent2", consent)
	put("erasure2", []dataset.Erasure{{SubjectID: tokens[2], RequestedAt: later}})
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\nconsent: "+filepath.Join(dir, "shop", "consent2")+"\nerasure: "+filepath.Join(dir, "shop", "erasure2")+
		"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"3\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	prom := filepath.Join(dir, "recheck.prom")
	code, out, msg = run(t, "exports", "recheck", "--config", cfg, "--logical-date", "2026-11-28", "--metrics-textfile", prom, "--json")
	rc = segment.Recheck{}
	if code != 0 || json.Unmarshal([]byte(out), &rc) != nil || rc.Recall != 3 {
		t.Fatalf("recheck a day later: %d %s\n%s", code, msg, out)
	}
	got := map[string]string{}
	for _, s := range rc.Exports[0].Recall {
		got[s.SubjectID] = s.Reason
	}
	if got[tokens[0]] != "withdrawn" || got[tokens[1]] != "withdrawn" || got[tokens[2]] != "erased" {
		t.Errorf("recall list %v", got)
	}
	metrics, _ := os.ReadFile(prom)
	if !strings.Contains(string(metrics), "veil_exports_subjects_to_recall{") || !strings.Contains(string(metrics), "} 3") {
		t.Errorf("metrics:\n%s", metrics)
	}
}

// veil segment fit and assign refuse a job with a privacy section (exit
// 2): they have no DP k-means, and their model holds exact statistics.
func TestSegmentFitRefusesPrivacy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dp.yaml")
	os.WriteFile(cfg, []byte("events: "+dir+"/events\noutput: "+dir+"/out\nkmeans: {k: \"3\"}\nnoisy_sizes_sigma: 3\nprivacy: {epsilon: 1, delta: 1.0e-6}\nbudget: {ledger: "+dir+"/ledger, epsilon: 5, delta: 1.0e-5}\n"), 0o644)
	if code, _, msg := run(t, "segment", "fit", "--config", cfg, "--prepared", dir+"/prepared", "--model", dir+"/model.json"); code != 2 || !strings.Contains(msg, "DP k-means") {
		t.Errorf("fit: exit %d: %s", code, msg)
	}
	if code, _, msg := run(t, "segment", "assign", "--config", cfg, "--logical-date", "2026-11-27", "--prepared", dir+"/prepared", "--model", dir+"/model.json"); code != 2 {
		t.Errorf("assign: exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "ledger")); err == nil {
		t.Error("a refused fit or assign touched the ledger")
	}
}

// veil segment refuses k: auto with privacy (exit 2) and says why, before
// it reads or spends anything.
func TestSegmentDPRefusesAutoK(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dp.yaml")
	os.WriteFile(cfg, []byte("events: "+dir+"/events\noutput: "+dir+"/out\nkmeans: {k: auto}\nnoisy_sizes_sigma: 3\nprivacy: {epsilon: 1, delta: 1.0e-6}\nbudget: {ledger: "+dir+"/ledger, epsilon: 5, delta: 1.0e-5}\n"), 0o644)
	code, _, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27")
	if code != 2 || !strings.Contains(msg, "DP k-means needs a fixed k") || !strings.Contains(msg, "no DP criterion") {
		t.Errorf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "ledger")); err == nil {
		t.Error("a refused run touched the ledger")
	}
}
