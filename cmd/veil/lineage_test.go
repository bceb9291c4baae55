package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/lineage/lineagetest"
)

// The steward's commands on a real run: the graph links the events input
// to the step runs and their outputs, verify notices a changed output, and
// impact finds the runs that used a subject and not those that did not.
func TestLineageCommands(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, 400)
	addTrainStep(t, spec, dir)
	if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-27"); code != 0 {
		t.Fatal(msg)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "state", "lineage"))
	events, err := lineage.ReadEvents(context.Background(), store, "")
	if err != nil {
		t.Fatal(err)
	}
	g := lineage.BuildGraph(events)
	var pipeline, step, recs *lineage.RunNode
	for _, r := range g.Runs {
		switch r.Job {
		case "nightly":
			pipeline = r
		case "nightly.cohorts":
			step = r
		case "nightly.recs":
			recs = r
		}
	}
	if recs == nil || recs.Parent != pipeline.RunID || len(recs.Outputs) != 1 || len(recs.Inputs) != 1 {
		t.Fatalf("graph: training step %+v", recs)
	}
	if pipeline == nil || step == nil || step.Parent != pipeline.RunID || len(step.Outputs) != 1 {
		t.Fatalf("graph: pipeline %+v step %+v", pipeline, step)
	}
	out := step.Outputs[0].Name

	code, text, msg := run(t, "lineage", "show", step.RunID[:13], "--spec", spec)
	if code != 0 || !strings.Contains(text, "upstream   file://"+filepath.Join(dir, "shop", "events")) ||
		!strings.Contains(text, "downstream file://"+out) || !strings.Contains(text, "part of: "+pipeline.RunID) {
		t.Errorf("show run: %d %s\n%s", code, msg, text)
	}
	code, text, _ = run(t, "lineage", "show", "shop/events", "--spec", spec)
	if code != 0 || strings.Count(text, "read by") != 3 {
		t.Errorf("show dataset: %d\n%s", code, text)
	}
	code, text, _ = run(t, "lineage", "show", pipeline.RunID, "--store", filepath.Join(dir, "state", "lineage"), "--format", "dot")
	if code != 0 || !strings.HasPrefix(text, "digraph lineage {") || !strings.Contains(text, fmt.Sprintf("%q -> %q", "ds:file://"+filepath.Join(dir, "shop", "events"), "run:"+step.RunID)) {
		t.Errorf("dot: %d\n%s", code, text)
	}
	if code, _, msg := run(t, "lineage", "show", "no-such-thing", "--spec", spec); code != 2 {
		t.Errorf("unknown target: exit %d %s", code, msg)
	}
	if code, _, msg := run(t, "lineage", "show", step.RunID); code != 2 || !strings.Contains(msg, "--store or --spec") {
		t.Errorf("no store: exit %d %s", code, msg)
	}

	// Erasure impact: a subject in the export is found in both steps' runs
	// (both clustered everyone); made-up tokens are found at about the
	// stated false-positive rate (1%).
	files, _ := filepath.Glob(filepath.Join(out, "assignments-*.csv"))
	f, _ := os.Open(files[0])
	rows, _ := csv.NewReader(f).ReadAll()
	f.Close()
	token := rows[1][0]
	code, text, msg = run(t, "lineage", "impact", "--subject", token, "--spec", spec)
	if code != 0 || !strings.Contains(text, "of 3 runs may contain it") || !strings.Contains(text, "output file://"+out) {
		t.Errorf("impact: %d %s\n%s", code, msg, text)
	}
	false_ := 0
	for i := range 50 {
		_, text, _ := run(t, "lineage", "impact", "--subject", fmt.Sprintf("tok_never_%d", i), "--spec", spec)
		if !strings.Contains(text, "0 of 3 runs") {
			false_++
		}
	}
	if false_ > 5 {
		t.Errorf("%d of 50 absent tokens matched", false_)
	}

	// verify: intact, then a changed export is named (exit 1).
	code, text, msg = run(t, "lineage", "verify", pipeline.RunID, "--spec", spec)
	if code != 0 || strings.Count(text, "checksums match") != 3 {
		t.Fatalf("verify: %d %s\n%s", code, msg, text)
	}
	// The training step's model card, by run id (prefix), by pipeline run
	// and by output location.
	code, text, msg = run(t, "card", "show", recs.RunID[:13], "--spec", spec)
	if code != 0 || !strings.HasPrefix(text, "# Model card: veil item factors 2026-11-27") || !strings.Contains(text, "(ε = 4") {
		t.Errorf("card show: %d %s\n%s", code, msg, text)
	}
	if code, text2, _ := run(t, "card", "show", pipeline.RunID, "--spec", spec); code != 0 || text2 != text {
		t.Errorf("card show of the pipeline run: %d\n%s", code, text2)
	}
	if code, js, msg := run(t, "card", "show", recs.Outputs[0].URL(), "--json"); code != 0 || lineagetest.ValidateCard("../..", []byte(js)) != nil {
		t.Errorf("card show --json of the output: %d %s %v", code, msg, lineagetest.ValidateCard("../..", []byte(js)))
	}
	if code, _, msg := run(t, "card", "show", step.RunID, "--spec", spec); code != 2 || !strings.Contains(msg, "no model card") {
		t.Errorf("card show of a segmentation run: %d %s", code, msg)
	}

	os.WriteFile(files[0], []byte("subject_id,cohort_id\nedited,1\n"), 0o644)
	code, text, msg = run(t, "lineage", "verify", step.RunID, "--spec", spec)
	if code != 1 || !strings.Contains(text, "FAIL file://"+out) || !strings.Contains(msg, out) {
		t.Errorf("verify after edit: %d %s\n%s", code, msg, text)
	}
}

// addTrainStep appends a training step to a spec that writeSpec wrote.
func addTrainStep(t *testing.T, spec, dir string) {
	t.Helper()
	f, err := os.OpenFile(spec, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `  - name: recs
    train:
      events: %[1]s/shop/events
      output: %[1]s/out/models
      model: {dim: 8, epsilon: 4, accountant: rdp}
      top_k: 10
      budget: {ledger: %[1]s/ledger, dataset: shop-models, epsilon: 20, delta: 1.0e-5, period: total}
`, dir)
	f.Close()
}

// A pseudonymize step in a pipeline: the raw export becomes the events
// table, the plan says it reads raw identifiers, the lineage links the raw
// file to the table, and a rerun is a no-op.
func TestRunPseudonymizeStep(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, dir, "k1", 0o600)
	raw, _ := filepath.Abs("testdata/online_retail_sample.csv")
	spec := filepath.Join(dir, "ingest.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: ingest
state: %[1]s/state
steps:
  - name: pseudonymize
    pseudonymize: {in: %[2]s, out: %[1]s/shop/events, id_column: CustomerID, key_file: %[3]s}
`, dir, raw, key)), 0o644)
	code, text, msg := run(t, "run", spec, "--logical-date", "2026-11-27", "--plan")
	if code != 0 || !strings.Contains(text, "raw, with direct identifiers") {
		t.Fatalf("plan: %d %s\n%s", code, msg, text)
	}
	code, text, msg = run(t, "run", spec, "--logical-date", "2026-11-27")
	if code != 0 || !strings.Contains(text, "events of") {
		t.Fatalf("run: %d %s\n%s", code, msg, text)
	}
	code, text, _ = run(t, "datasets", "inspect", filepath.Join(dir, "shop", "events"), "--json")
	if code != 0 || !strings.Contains(text, `"events v1"`) {
		t.Errorf("inspect: %d\n%s", code, text)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "shop", "events", "_manifest.json"))
	if strings.Contains(string(data), "17850") {
		t.Error("a raw customer id reached the manifest")
	}
	code, text, _ = run(t, "lineage", "show", "online_retail_sample.csv", "--spec", spec)
	if code != 0 || !strings.Contains(text, "read by    ingest.pseudonymize") {
		t.Errorf("lineage: %d\n%s", code, text)
	}
	v, err := lineagetest.New("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "state", "lineage", "*", "*", "*.json"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if len(files) != 4 {
		t.Errorf("%d lineage events, want 4", len(files))
	}
	if code, text, _ := run(t, "run", spec, "--logical-date", "2026-11-27"); code != 0 || !strings.Contains(text, "nothing to do") {
		t.Errorf("rerun: %d\n%s", code, text)
	}
	// Spec mistakes of this kind are caught before anything runs.
	for _, bad := range []string{
		"pseudonymize: {in: x.csv, out: y, id_column: C}",
		"pseudonymize: {in: x.csv, out: y, id_column: C, key_file: k, key_env: K}",
		"pseudonymize: {in: x.csv, out: y, key_file: k}",
		"pseudonymize: {in: x.csv, out: y, id_column: C, key_file: k, format: xml}",
	} {
		os.WriteFile(spec, []byte(fmt.Sprintf("name: ingest\nstate: %s/state\nsteps:\n  - name: p\n    %s\n", dir, bad)), 0o644)
		if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-27"); code != 2 {
			t.Errorf("%s: exit %d %s", bad, code, msg)
		}
	}
}

// --progress always draws bars on stderr (auto draws them only on a
// terminal); stdout is unchanged.
func TestProgressBars(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, 300)
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv, Logger: slog.New(slog.DiscardHandler)}
	if err := execute(context.Background(), env, []string{"run", spec, "--logical-date", "2026-11-27", "--progress", "always"}); err != nil {
		t.Fatal(err)
	}
	if s := stderr.String(); !strings.Contains(s, "nightly: step more") || !strings.Contains(s, "100%") || strings.Contains(stdout.String(), "100%") {
		t.Errorf("run bar: stderr %q", s)
	}
	stderr.Reset()
	key := writeKey(t, dir, "k", 0o600)
	args := []string{"pseudonymize", "--in", "testdata/online_retail_sample.csv", "--out", filepath.Join(dir, "ev"), "--id-column", "CustomerID", "--key-file", key}
	env = &Env{Stdout: io.Discard, Stderr: &stderr, Getenv: os.Getenv, Logger: slog.New(slog.DiscardHandler)}
	if err := execute(context.Background(), env, append(args, "--progress", "always")); err != nil {
		t.Fatal(err)
	}
	if s := stderr.String(); !strings.Contains(s, "pseudonymizing 100%") {
		t.Errorf("pseudonymize bar: %q", s)
	}
	stderr.Reset()
	env = &Env{Stdout: io.Discard, Stderr: &stderr, Getenv: os.Getenv, Logger: slog.New(slog.DiscardHandler)}
	if err := execute(context.Background(), env, append(args, "--progress", "auto")); err != nil || stderr.Len() != 0 {
		t.Errorf("auto with a buffer for stderr drew %q (%v)", stderr.String(), err)
	}
	if code, _, _ := run(t, "version", "--progress", "sometimes"); code != 2 {
		t.Errorf("--progress sometimes: exit %d", code)
	}
}
