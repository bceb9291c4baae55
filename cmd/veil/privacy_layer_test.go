package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/pseudonym"
	"github.com/veil-privacy/veil/train"
)

func writeKey(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	key := []byte(name + "-0123456789abcdefghijklmnopqrstuvwxyz")
	if err := os.WriteFile(p, key, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

func TestPseudonymizeAndRekey(t *testing.T) {
	dir := t.TempDir()
	k1 := writeKey(t, dir, "k1", 0o600)
	k2 := writeKey(t, dir, "k2", 0o600)
	out := filepath.Join(dir, "shop", "events")
	code, stdout, msg := run(t, "pseudonymize", "--in", "testdata/online_retail_sample.csv", "--out", out, "--id-column", "CustomerID", "--key-file", k1, "--json")
	if code != 0 {
		t.Fatalf("pseudonymize: %d %s", code, msg)
	}
	var sum ingest.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	key, _ := pseudonym.LoadKeyFile(k1)
	if sum.Rows != 40 || sum.Dropped["no_customer_id"] != 4 || sum.KeyID != key.ID() || sum.Files != 1 {
		t.Errorf("summary %+v", sum)
	}
	// The output is an events dataset whose subjects are tokens of key 1,
	// and holds no raw customer id anywhere.
	s, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	in, err := dataset.Inspect(context.Background(), dataset.Ref{Store: s, Key: "events"})
	if err != nil || in.Contract != "events v1" || in.Rows != sum.Events {
		t.Fatalf("inspect %+v %v", in, err)
	}
	keys, _ := dataset.Inputs(context.Background(), dataset.Ref{Store: s, Key: "events"}, dataset.Window{})
	f, _ := dataset.OpenParquet(context.Background(), s, keys[0], dataset.EventsContract)
	var subjects []string
	dataset.ReadRows(context.Background(), f, func(rows []dataset.Event) error {
		for _, r := range rows {
			subjects = append(subjects, r.SubjectID)
		}
		return nil
	})
	f.Close()
	if subjects[0] != key.Token("17850") {
		t.Errorf("first subject %s, want the token of 17850", subjects[0])
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "shop", keys[0]))
	if strings.Contains(string(raw), "17850") {
		t.Error("the raw customer id is in the output file")
	}
	// The shop's product list is written beside the events: a catalog
	// output holding every item of the events, with the events' item ids.
	cin, err := dataset.Inspect(context.Background(), dataset.Ref{Store: s, Key: "catalog"})
	if err != nil || cin.Contract != "catalog v1" {
		t.Fatalf("inspect catalog %+v %v", cin, err)
	}
	if sum.Catalog == nil || sum.Catalog.Items != int(cin.Rows) || !strings.HasSuffix(sum.Catalog.Out, "catalog") {
		t.Errorf("catalog summary %+v, %d rows", sum.Catalog, cin.Rows)
	}
	ids, err := train.ReadCatalog(context.Background(), filepath.Join(dir, "shop", "catalog"), privacy.JobTables{Events: filepath.Join(dir, "shop", "events")}, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, _ = dataset.OpenParquet(context.Background(), s, keys[0], dataset.EventsContract)
	dataset.ReadRows(context.Background(), f, func(rows []dataset.Event) error {
		for _, r := range rows {
			if !slices.Contains(ids, r.ItemID) {
				t.Errorf("event item %s is not in the catalog", r.ItemID)
			}
		}
		return nil
	})
	f.Close()

	// Rekey with the raw ids from the same export.
	rekeyed := filepath.Join(dir, "shop", "events2")
	code, _, msg = run(t, "pseudonymize", "rekey", "--in", out, "--out", rekeyed, "--ids", "testdata/online_retail_sample.csv", "--id-column", "CustomerID", "--old-key-file", k1, "--new-key-file", k2)
	if code != 0 {
		t.Fatalf("rekey: %d %s", code, msg)
	}
	k2key, _ := pseudonym.LoadKeyFile(k2)
	keys, _ = dataset.Inputs(context.Background(), dataset.Ref{Store: s, Key: "events2"}, dataset.Window{})
	f, _ = dataset.OpenParquet(context.Background(), s, keys[0], dataset.EventsContract)
	var first string
	dataset.ReadRows(context.Background(), f, func(rows []dataset.Event) error {
		if first == "" {
			first = rows[0].SubjectID
		}
		return nil
	})
	f.Close()
	if first != k2key.Token("17850") {
		t.Errorf("rekeyed subject %s, want the key-2 token of 17850", first)
	}
	// Without the ids of every subject, rekey refuses and writes nothing.
	os.WriteFile(filepath.Join(dir, "few.csv"), []byte("CustomerID\n17850\n"), 0o644)
	code, _, msg = run(t, "pseudonymize", "rekey", "--in", out, "--out", filepath.Join(dir, "shop", "events3"), "--ids", filepath.Join(dir, "few.csv"), "--id-column", "CustomerID", "--old-key-file", k1, "--new-key-file", k2)
	if code != 1 || !strings.Contains(msg, "no identifier") {
		t.Errorf("partial ids: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop", "events3", dataset.ManifestName)); err == nil {
		t.Error("a refused rekey committed an output")
	}

	// Bad keys are refused with exit 2.
	open := writeKey(t, dir, "open", 0o644)
	for _, args := range [][]string{
		{"--key-file", open},
		{"--key-file", filepath.Join(dir, "missing")},
		{},
		{"--key-env", "VEIL_TEST_NO_SUCH_VAR"},
	} {
		a := append([]string{"pseudonymize", "--in", "testdata/online_retail_sample.csv", "--out", filepath.Join(dir, "x"), "--id-column", "CustomerID"}, args...)
		if code, _, msg := run(t, a...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused pseudonymize left output")
	}
}

func TestFilterAndScanPII(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", dir, "--subjects", "500", "--items", "100", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	code, out, msg := run(t, "datasets", "filter", dir+"/events", "--purposes", "segmentation,marketing", "--logical-date", "2026-11-27", "--json")
	if code != 0 {
		t.Fatalf("filter: %d %s", code, msg)
	}
	var rep privacy.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var dropped int64
	for _, n := range rep.RowsDropped {
		dropped += n
	}
	if rep.RowsRead == 0 || rep.RowsKept == 0 || rep.RowsKept+dropped != rep.RowsRead || rep.RowsDropped["denied"] == 0 || rep.Consent.Records == 0 {
		t.Errorf("report %+v", rep)
	}
	for _, args := range [][]string{
		{"datasets", "filter", dir + "/events", "--purposes", "advertising", "--logical-date", "2026-11-27"},
		{"datasets", "filter", dir + "/events", "--purposes", "analytics", "--logical-date", "yesterday"},
		{"datasets", "filter", dir + "/events", "--purposes", "analytics", "--logical-date", "2026-11-27", "--policy", "no-such.yaml"},
	} {
		if code, _, msg := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, msg)
		}
	}
	if code, _, msg := run(t, "datasets", "scan-pii", dir+"/events"); code != 0 {
		t.Errorf("scan-pii clean: %d %s", code, msg)
	}
	// A raw export with e-mail addresses is refused with exit 3.
	raw := filepath.Join(dir, "raw")
	os.WriteFile(filepath.Join(dir, "raw.csv"), []byte("email,event_time,event_type,item_id\njane@example.com,2026-11-01T10:00:00Z,view,X1\n"), 0o644)
	k := writeKey(t, dir, "k", 0o600)
	if code, _, msg := run(t, "pseudonymize", "--in", filepath.Join(dir, "raw.csv"), "--out", raw, "--id-column", "email", "--key-file", k); code != 0 {
		t.Fatal(msg)
	}
	if code, _, _ := run(t, "datasets", "scan-pii", raw); code != 0 {
		t.Errorf("a pseudonymized export should scan clean")
	}
	type leaky struct {
		SubjectID string `parquet:"subject_id"`
		Contact   string `parquet:"contact"`
	}
	s, _ := dataset.NewFileStore(dir)
	out2, _ := dataset.NewOutput(context.Background(), s, "leaky", nil, "test")
	w, _ := dataset.CreateParquet[leaky](context.Background(), out2, "part.parquet")
	w.Write([]leaky{{"tok_a", "jane@example.com"}})
	w.Close()
	out2.Commit(context.Background(), nil)
	code, _, msg = run(t, "datasets", "scan-pii", dir+"/leaky")
	if code != 3 || !strings.Contains(msg, `"contact"`) || strings.Contains(msg, "jane@example.com") {
		t.Errorf("scan-pii leaky: %d %s", code, msg)
	}
	// Events whose subject tokens hold an e-mail address (not the
	// smallest or largest token, so that only the values show it): filter
	// refuses them as scan-pii does, with its message, though it checks
	// the tokens in the scan's own reads.
	out3, _ := dataset.NewOutput(context.Background(), s, "leakyevents", dataset.EventsContract, "test")
	ew, _ := dataset.CreateParquet[dataset.Event](context.Background(), out3, "dt=2026-11-20/part.parquet")
	var evs []dataset.Event
	for i := range 50 {
		evs = append(evs, dataset.Event{SubjectID: fmt.Sprintf("tok_%02d", i), EventTime: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), EventType: "view", ItemID: "X1"})
	}
	evs[20].SubjectID = "tok_20 jane@example.com"
	ew.Write(evs)
	ew.Close()
	out3.Commit(context.Background(), nil)
	_, _, want := run(t, "datasets", "scan-pii", dir+"/leakyevents")
	code, _, msg = run(t, "datasets", "filter", dir+"/leakyevents", "--purposes", "segmentation", "--logical-date", "2026-11-27",
		"--consent", dir+"/consent", "--erasure", dir+"/erasure")
	if code != 3 || msg != want || !strings.Contains(msg, `"subject_id"`) || !strings.Contains(msg, "row group 0;") {
		t.Errorf("filter of leaky events: %d %s\nscan-pii: %s", code, msg, want)
	}
}
