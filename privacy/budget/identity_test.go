package budget_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	s, _ := dataset.NewFileStore(dir)
	// A table without a manifest: every spelling is its canonical URL.
	os.MkdirAll(filepath.Join(dir, "plain", "dt=2026-11-01"), 0o755)
	os.WriteFile(filepath.Join(dir, "plain", "dt=2026-11-01", "part.parquet"), []byte("x"), 0o644)
	want := "file://" + filepath.ToSlash(filepath.Join(dir, "plain"))
	for _, spelling := range []string{filepath.Join(dir, "plain"), filepath.Join(dir, "plain") + "/", "file://" + filepath.Join(dir, ".", "plain"), "file://" + dir + "//plain/"} {
		if id, err := budget.Identity(ctx, spelling, "", dataset.URLOptions{}); err != nil || id != want {
			t.Errorf("Identity(%s) = %q, %v; want %q", spelling, id, err, want)
		}
	}
	if id, _ := budget.Identity(ctx, filepath.Join(dir, "plain"), "shop", dataset.URLOptions{}); id != "shop" {
		t.Errorf("declared: %q", id)
	}
	// An events table gets an identity, and keeps it when rewritten.
	write := func(prefix string, events bool, meta map[string]string) *dataset.Manifest {
		out, err := dataset.NewOutput(ctx, s, prefix, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		if events {
			out.NewPopulation()
		}
		out.PutFile(ctx, "a.json", []byte("{}"), 0)
		m, err := out.Commit(ctx, meta)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := write("events", true, nil)
	if again := write("events", true, nil); first.Identity == "" || again.Identity != first.Identity {
		t.Errorf("identity %q, after a rewrite %q", first.Identity, again.Identity)
	}
	if other := write("other", true, nil); other.Identity == first.Identity {
		t.Errorf("two populations share identity %q", other.Identity)
	}
	if id, err := budget.Identity(ctx, "file://"+dir+"/events", "", dataset.URLOptions{}); err != nil || id != first.Identity {
		t.Errorf("Identity of the events = %q, %v", id, err)
	}
	// A part of the table (one file, one partition) charges the table's
	// budget, not a fresh one.
	m, _ := dataset.ReadManifest(ctx, s, "events")
	os.MkdirAll(filepath.Join(dir, "events", "dt=2026-11-28"), 0o755)
	os.WriteFile(filepath.Join(dir, "events", "dt=2026-11-28", "part.parquet"), []byte("x"), 0o644)
	for _, part := range []string{filepath.Join(dir, "events", m.Files[0].Key), filepath.Join(dir, "events", "dt=2026-11-28"),
		filepath.Join(dir, "events", "dt=2026-11-28", "part.parquet")} {
		if id, err := budget.Identity(ctx, part, "", dataset.URLOptions{}); err != nil || id != first.Identity {
			t.Errorf("Identity of %s = %q, %v; want the table's %q", part, id, err, first.Identity)
		}
	}
	// A part of a table without a manifest charges the table too: hive
	// partition segments (key=value) and a trailing file name are not
	// part of a table's name, so a job pointed at one partition or one
	// file cannot open a fresh budget.
	os.MkdirAll(filepath.Join(dir, "plain", "region=EU", "dt=2026-11-02"), 0o755)
	os.WriteFile(filepath.Join(dir, "plain", "part-0.parquet"), []byte("x"), 0o644)
	for _, part := range []string{
		filepath.Join(dir, "plain", "dt=2026-11-01"),
		filepath.Join(dir, "plain", "dt=2026-11-01") + "/",
		"file://" + filepath.Join(dir, "plain", "dt=2026-11-01", "part.parquet"),
		filepath.Join(dir, "plain", "region=EU", "dt=2026-11-02"),
		filepath.Join(dir, "plain", "part-0.parquet"),
		filepath.Join(dir, "plain", "dt=2026-12-01"), // a partition not written yet
	} {
		if id, err := budget.Identity(ctx, part, "", dataset.URLOptions{}); err != nil || id != want {
			t.Errorf("Identity(%s) of a table without a manifest = %q, %v; want the table's %q", part, id, err, want)
		}
	}
	// A folder whose name holds no '=' is a table of its own.
	os.MkdirAll(filepath.Join(dir, "plain", "archive"), 0o755)
	if id, _ := budget.Identity(ctx, filepath.Join(dir, "plain", "archive"), "", dataset.URLOptions{}); id != want+"/archive" {
		t.Errorf("a folder below a table without a manifest: %q", id)
	}
	// A prepared table written without an identity is refused.
	write("prepared/dt=2026-11-27", false, map[string]string{"job": "train-prepare"})
	if _, err := budget.Identity(ctx, filepath.Join(dir, "prepared", "dt=2026-11-27"), "", dataset.URLOptions{}); !errors.Is(err, budget.ErrNoIdentity) || !errors.Is(err, budget.ErrPolicy) {
		t.Errorf("prepared table without identity: %v", err)
	}
}

func TestCanonicalURL(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/shop/events?endpoint=http://x&region=eu": "s3://bucket/shop/events",
		"s3://bucket//shop/./events/":                         "s3://bucket/shop/events",
		"s3://bucket":                                         "s3://bucket",
		"file:///srv/veil/../veil/shop":                       "file:///srv/veil/shop",
	} {
		if got := dataset.CanonicalURL(in); got != want {
			t.Errorf("CanonicalURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// Table finds the committed table that holds a part of it (one file, one
// dt= partition), as Identity does, so that entry points treat the part
// as the table.
func TestTable(t *testing.T) {
	dir := t.TempDir()
	s, _ := dataset.NewFileStore(dir)
	out, err := dataset.NewOutput(ctx, s, "events", dataset.EventsContract, "test")
	if err != nil {
		t.Fatal(err)
	}
	out.NewPopulation()
	out.PutFile(ctx, "dt=2026-11-01/part-0.parquet", []byte("x"), 0)
	m, err := out.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	os.MkdirAll(filepath.Join(dir, "plain", "dt=2026-11-01"), 0o755)
	os.WriteFile(filepath.Join(dir, "plain", "dt=2026-11-01", "part.parquet"), []byte("x"), 0o644)
	plain := "file://" + filepath.ToSlash(filepath.Join(dir, "plain"))
	for _, tc := range []struct {
		url, table string
		contract   string // "" for no manifest
	}{
		{events, events, "events"},
		{filepath.Join(events, m.Files[0].Key), "file://" + filepath.ToSlash(events), "events"},
		{filepath.Join(events, "dt=2026-11-01"), "file://" + filepath.ToSlash(events), "events"},
		{filepath.Join(dir, "plain"), filepath.Join(dir, "plain"), ""},
		{filepath.Join(dir, "plain", "dt=2026-11-01", "part.parquet"), plain, ""},
	} {
		table, tm, err := budget.Table(ctx, tc.url, dataset.URLOptions{})
		contract := ""
		if tm != nil {
			contract = tm.Contract
		}
		if err != nil || table != tc.table || contract != tc.contract {
			t.Errorf("Table(%s) = %s, contract %q, %v; want %s, contract %q", tc.url, table, contract, err, tc.table, tc.contract)
		}
		if tm != nil && tm.Identity != m.Identity {
			t.Errorf("Table(%s): identity %q, want the events' %q", tc.url, tm.Identity, m.Identity)
		}
	}
}
