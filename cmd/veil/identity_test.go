package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

func ledgerOf(t *testing.T, dir string) *budget.Ledger {
	t.Helper()
	s, err := dataset.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return budget.Open(s, "")
}

// A budget belongs to a population, not to a spelling: a file named by
// its path, a relative path and a file:// URL share one budget. A file
// without a manifest is a part of the table that holds it: the budget is
// its folder's (another file beside it could not open a fresh one).
func TestSpellingsShareOneBudget(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("subject_id,item_id\n")
	for s := range 400 {
		for k := range 6 {
			fmt.Fprintf(&b, "s%d,i%d\n", s, (s*7+k*3)%40)
		}
	}
	in := filepath.Join(dir, "data", "in.csv")
	os.MkdirAll(filepath.Dir(in), 0o755)
	os.WriteFile(in, []byte(b.String()), 0o644)
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, in)
	if err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(dir, "ledger")
	mf := func(spelling string) (int, string) {
		code, _, msg := run(t, "train", "mf", "--in", spelling, "--no-consent-public-data", "--epsilon", "4", "--ledger", ledger, "--dim", "4", "--epochs", "1",
			"--baselines=false", "--accountant", "rdp", "--budget-epsilon", "4", "--budget-delta", "1e-5")
		return code, msg
	}
	// One run (ε about 3.5) fits a budget of ε 4; another is refused,
	// whatever the spelling.
	if code, msg := mf(in); code != 0 {
		t.Fatalf("train mf %s: %d %s", in, code, msg)
	}
	for _, spelling := range []string{"file://" + filepath.ToSlash(filepath.Join(dir, "data", ".", "in.csv")), rel} {
		if code, msg := mf(spelling); code != 3 || !strings.Contains(msg, "exhausted") {
			t.Errorf("second run, spelled %s: exit %d (%s), want 3: the spellings are one budget", spelling, code, msg)
		}
	}
	// Another file of the folder is the same table: refused too.
	os.WriteFile(filepath.Join(dir, "data", "in-2.csv"), []byte(b.String()), 0o644)
	if code, msg := mf(filepath.Join(dir, "data", "in-2.csv")); code != 3 || !strings.Contains(msg, "exhausted") {
		t.Errorf("another file of the folder: exit %d (%s), want 3: one table, one budget", code, msg)
	}
	table := "file://" + filepath.ToSlash(filepath.Dir(in))
	recs, err := ledgerOf(t, ledger).Records(context.Background(), table)
	if err != nil || len(recs) != 1 {
		t.Errorf("%d records under the canonical URL of the folder (%v), want 1", len(recs), err)
	}
	// budget show takes any spelling and says which identity it shows.
	for _, spelling := range []string{in, rel, "file://" + in} {
		code, out, msg := run(t, "budget", "show", spelling, "--ledger", ledger, "--json")
		var st budget.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Dataset != table || len(st.Runs) != 1 {
			t.Errorf("budget show %s: %d %s\n%s", spelling, code, msg, out)
		}
	}
	code, out, _ := run(t, "budget", "show", filepath.Join(dir, "other.csv"), "--ledger", ledger)
	if code != 0 || !strings.Contains(out, "nothing recorded") {
		t.Errorf("budget show of an unknown table: %d\n%s", code, out)
	}
}

// A generated events table carries an identity; a prepared table carries
// its events' identity, and training on the prepared table charges it.
func TestPreparedTableChargesItsEvents(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "500", "--items", "60", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	events := filepath.Join(dir, "shop", "events")
	s, _ := dataset.NewFileStore(events)
	m, err := dataset.ReadManifest(context.Background(), s, "")
	if err != nil || m.Identity == "" {
		t.Fatalf("the generated events carry no identity: %+v, %v", m, err)
	}
	ledger := filepath.Join(dir, "ledger")
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\nmodel: {dim: 4, accountant: rdp, epsilon: 4, epochs: 1}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5}\n",
		events, filepath.Join(dir, "out"), ledger)), 0o644)
	prepared := filepath.Join(dir, "prepared")
	if code, _, msg := run(t, "train", "prepare", "--config", cfg, "--logical-date", "2026-11-27", "--out", prepared); code != 0 {
		t.Fatalf("train prepare: %d %s", code, msg)
	}
	ps, _ := dataset.NewFileStore(prepared)
	pm, err := dataset.ReadManifest(context.Background(), ps, "dt=2026-11-27")
	if err != nil || pm.Identity != m.Identity {
		t.Fatalf("the prepared table carries identity %q (%v), want its events' %q", pm.Identity, err, m.Identity)
	}
	code, _, msg := run(t, "train", "mf", "--in", filepath.Join(prepared, "dt=2026-11-27"), "--epsilon", "4", "--ledger", ledger, "--dim", "4", "--epochs", "1", "--baselines=false")
	if code != 0 {
		t.Fatalf("train mf on the prepared table: %d %s", code, msg)
	}
	recs, err := ledgerOf(t, ledger).Records(context.Background(), m.Identity)
	if err != nil || len(recs) != 1 || recs[0].Job != "train mf" {
		t.Errorf("records of the events' identity: %+v, %v", recs, err)
	}
	// budget show by the events' path shows the identity and the run.
	code, out, _ := run(t, "budget", "show", events, "--ledger", ledger, "--json")
	var st budget.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Dataset != m.Identity || len(st.Runs) != 1 {
		t.Errorf("budget show %s: %d\n%s", events, code, out)
	}
}
