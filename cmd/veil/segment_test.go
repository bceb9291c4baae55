package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/segment"
)

func TestSegmentKMeansCommand(t *testing.T) {
	dir := t.TempDir()
	x := segment.NewMatrix(3000, 3)
	for i := range x.Data {
		x.Data[i] = float32((i*7919)%1000)/100 + float32(i%3*10)
	}
	f, _ := os.Create(filepath.Join(dir, "x.npy"))
	segment.WriteNpy(f, x)
	f.Close()
	p, _ := os.Create(filepath.Join(dir, "x.parquet"))
	segment.WriteParquetMatrix(p, x, 1000)
	p.Close()
	init := &segment.Matrix{N: 2, D: 3, Data: x.Data[:6]}
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
