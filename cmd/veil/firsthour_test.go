package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// A new user's first mistakes get a plain answer and the right exit code.
func TestFirstHourUsage(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join("..", "..", "configs", "nightly.yaml")
	tests := []struct {
		name  string
		args  []string
		code  int
		words []string
	}{
		{"day first date with --plan", []string{"run", spec, "--plan", "--logical-date", "27/11/2026"}, 2, []string{`"27/11/2026" is not a date`}},
		{"month 13 with --plan", []string{"run", spec, "--plan", "--logical-date", "2026-13-01"}, 2, []string{`"2026-13-01" is not a date`}},
		{"missing date", []string{"run", spec}, 2, []string{"--logical-date is required"}},
		{"no audit log", []string{"audit", "verify", filepath.Join(dir, "nothing-here")}, 1, []string{"no audit log at", "nothing-here"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, msg := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (%s)\n%s", code, tc.code, msg, out)
			}
			for _, w := range tc.words {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
		})
	}
	// The plan needs the steward's policy that veil demo writes next to
	// the shop: without it the answer names the file.
	abs, _ := filepath.Abs(spec)
	t.Chdir(dir)
	if code, out, msg := run(t, "run", abs, "--plan"); code != 2 || !strings.Contains(msg, "veil-demo/policy.yaml") {
		t.Errorf("--plan before veil demo: %d %s\n%s", code, msg, out)
	}
	os.MkdirAll("veil-demo", 0o755)
	os.WriteFile("veil-demo/policy.yaml", demoText(configs.Policy, "veil-demo"), 0o644)
	// --plan without a date still plans, and names who set the budget.
	if code, out, msg := run(t, "run", abs, "--plan"); code != 0 || !strings.Contains(out, "pipeline") || !strings.Contains(out, "set by the policy veil-demo/policy.yaml") {
		t.Errorf("--plan without a date: %d %s\n%s", code, msg, out)
	}
}

// An e-mail address in the category column of a raw export is refused by
// veil pseudonymize and by a pipeline's pseudonymize step: exit 3, nothing
// committed.
func TestPseudonymizeRefusesPII(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, dir, "k1", 0o600)
	raw := filepath.Join(dir, "raw.csv")
	os.WriteFile(raw, []byte("email,event_time,event_type,item_id,category\n"+
		"a@example.com,2026-11-01T10:00:00Z,view,i1,home/decor\n"+
		"b@example.com,2026-11-01T11:00:00Z,purchase,i2,jane.doe@example.com\n"), 0o644)
	out := filepath.Join(dir, "shop", "events")
	code, _, msg := run(t, "pseudonymize", "--in", raw, "--out", out, "--id-column", "email", "--key-file", key, "--format", "csv")
	if code != 3 || !strings.Contains(msg, `column "category"`) || strings.Contains(msg, "jane.doe") {
		t.Errorf("pseudonymize: exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(out, "_manifest.json")); err == nil {
		t.Error("a refused pseudonymize committed its output")
	}
	spec := filepath.Join(dir, "ingest.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: ingest
state: %[1]s/state
steps:
  - name: pseudonymize
    pseudonymize: {in: %[2]s, out: %[3]s, id_column: email, format: csv, key_file: %[4]s}
`, dir, raw, out, key)), 0o644)
	code, _, msg = run(t, "run", spec, "--logical-date", "2026-11-27")
	if code != 3 || !strings.Contains(msg, `column "category"`) {
		t.Errorf("pipeline: exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(out, "_manifest.json")); err == nil {
		t.Error("a refused pseudonymize step committed its output")
	}
}

// veil exports recheck sees the sharded export of veil segment assign (the
// same files veil-beam assign writes), not only veil segment's.
func TestRecheckSeesShardedExports(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "seg.yaml")
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"3\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	prepared := filepath.Join(dir, "prepared")
	model := filepath.Join(dir, "model.json")
	for _, args := range [][]string{
		{"segment", "prepare", "--config", cfg, "--logical-date", "2026-11-27", "--out", prepared, "--shards", "3"},
		{"segment", "fit", "--config", cfg, "--prepared", prepared + "/dt=2026-11-27", "--model", model},
		{"segment", "assign", "--config", cfg, "--logical-date", "2026-11-27", "--prepared", prepared + "/dt=2026-11-27", "--model", model},
	} {
		if code, out, msg := run(t, args...); code != 0 {
			t.Fatalf("%s: %d %s\n%s", args[:2], code, msg, out)
		}
	}
	code, out, msg := run(t, "exports", "recheck", "--config", cfg, "--logical-date", "2026-11-27")
	if code != 0 || !strings.HasPrefix(out, "1 exports,") || strings.Contains(out, " 0 subjects checked") {
		t.Errorf("recheck: %d %s\n%s", code, msg, out)
	}
}

// Printed summaries show counts by reason in words and numbers without
// float noise, never Go syntax.
func TestHumanNumbers(t *testing.T) {
	if got := counts(map[string]int{"no_consent": 12, "denied": 464, "erased": 0}); got != "denied 464, no_consent 12" {
		t.Errorf("counts = %q", got)
	}
	if got := counts(nil); got != "none" {
		t.Errorf("counts(nil) = %q", got)
	}
	if got := num(3 * 1e-5); got != "3e-05" {
		t.Errorf("num(3e-5) = %q", got)
	}
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "seg.yaml")
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"3\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	var all strings.Builder
	for _, args := range [][]string{
		{"segment", "--config", cfg, "--logical-date", "2026-11-27"},
		{"exports", "recheck", "--config", cfg, "--logical-date", "2026-11-27"},
		{"privacy", "epsilon", "--accountant", "rdp", "--sampling-rate", "0.01", "--noise-multiplier", "1.1", "--steps", "100", "--delta", fmt.Sprint(3 * 1e-5)},
	} {
		code, out, msg := run(t, args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, msg)
		}
		all.WriteString(out)
	}
	for _, bad := range []string{"map[", "0000000", "[]"} {
		if strings.Contains(all.String(), bad) {
			t.Errorf("printed %q:\n%s", bad, all.String())
		}
	}
	if !strings.Contains(all.String(), "not exported: ") {
		t.Errorf("no not-exported counts:\n%s", all.String())
	}
}

// veil policy check of the shipped spec passes whatever spelling of the
// root holds veil-demo (., an absolute path, veil-demo itself); marketing
// reads every cohort export with the plots its datasheet embeds.
func TestPolicyCheckRoots(t *testing.T) {
	abs, _ := filepath.Abs(".")
	for _, root := range []string{".", abs, "veil-demo", abs + "/veil-demo/"} {
		code, out, msg := run(t, "policy", "check", "--spec", "../../configs/nightly.yaml", "--root", root)
		if code != 0 || !strings.Contains(out, "every location is within role scheduler") {
			t.Errorf("--root %s: %d %s\n%s", root, code, msg, out)
		}
	}
	marketing := privacy.DefaultRoles()["marketing"]
	for _, out := range []string{"cohorts", "cohorts-dp"} {
		for _, f := range []string{"assignments-1a2b.csv", "datasheet-1a2b.md", "cohort_map-1a2b.png", "cohort_sizes-1a2b.png", "monitoring-1a2b.png", "_manifest.json"} {
			key := "out/" + out + "/dt=2026-11-27/run=0193/" + f
			if !marketing.Allows(key, false) {
				t.Errorf("marketing may not read %s", key)
			}
		}
	}
	for _, key := range []string{"out/models/dt=2026-11-27/run=0193/recommendations-1a2b.parquet", "shop/events/dt=2026-11-27/part-0.parquet", "state/audit/0000000001.json"} {
		if marketing.Allows(key, false) {
			t.Errorf("marketing may read %s", key)
		}
	}
}

// The datasheet names the export's files as they are (with the write's id),
// and every file it names is in the export's manifest.
func TestDatasheetNamesRealFiles(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "seg.yaml")
	os.WriteFile(cfg, []byte("events: "+filepath.Join(dir, "shop", "events")+"\noutput: "+filepath.Join(dir, "out")+"\nkmeans: {k: \"3\"}\ncohort_floor: {min_size: 30, small: merge}\n"), 0o644)
	if code, _, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27"); code != 0 {
		t.Fatal(msg)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "out", "dt=2026-11-27", "run=*"))
	if len(runs) != 1 {
		t.Fatalf("runs %v", runs)
	}
	s, _ := dataset.NewFileStore(runs[0])
	m, err := dataset.ReadManifest(context.Background(), s, "")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{"_manifest.json": true, "latest.json": true} // latest.json: the pipeline's pointer
	for _, f := range m.Files {
		files[f.Key] = true
	}
	ds, ok := m.Find("datasheet.md")
	if !ok {
		t.Fatal("no datasheet")
	}
	text := mustRead(t, filepath.Join(runs[0], ds.Key))
	named := regexp.MustCompile("`([a-z_]+(?:-[0-9a-f]+)?\\.(?:parquet|csv|json|png|bloom|md))`").FindAllStringSubmatch(text, -1)
	if len(named) < 6 {
		t.Errorf("the datasheet names %d files:\n%s", len(named), text)
	}
	for _, n := range named {
		if !files[n[1]] {
			t.Errorf("the datasheet names %s, which is not in the export (%v)", n[1], slices.Sorted(maps.Keys(files)))
		}
	}
	a, _ := m.Find("assignments.csv")
	if !strings.Contains(text, "`"+a.Key+"`") {
		t.Errorf("the datasheet does not name %s", a.Key)
	}
}

// Every veil command line in the shell examples of the README and of
// docs/*.md (the pages scripts/readme_examples.sh runs) names a command
// that exists and flags it accepts (parsed, not run: the examples need
// data, S3 or a cluster). The Beam section's commands run from the
// repository root with the binaries in bin/.
func TestReadmeExamples(t *testing.T) {
	pages, _ := filepath.Glob("../../docs/*.md")
	var all []byte
	for _, page := range append([]string{"../../README.md"}, pages...) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, data...), '\n')
	}
	data := all
	var lines []string
	inSh := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			inSh = true
		case strings.HasPrefix(l, "```"):
			inSh = false
		case inSh:
			if n := len(lines); n > 0 && strings.HasSuffix(lines[n-1], "\\") {
				lines[n-1] = strings.TrimSuffix(lines[n-1], "\\") + " " + strings.TrimSpace(l)
			} else {
				lines = append(lines, l)
			}
		}
	}
	checked := 0
	for _, l := range lines {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		fields := strings.Fields(strings.ReplaceAll(l, "'", ""))
		var args []string
		switch {
		case len(fields) > 1 && (fields[0] == "veil" || fields[0] == "bin/veil"):
			args = fields[1:]
		case len(fields) > 3 && fields[0] == "go" && fields[1] == "run" && fields[2] == "./cmd/veil":
			args = fields[3:]
		default:
			continue
		}
		if slices.Contains(args, "...") || slices.Contains(args, "|") {
			continue
		}
		checked++
		root := newRootCmd(&Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv})
		cmd, rest, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("README: %q: no such command (%v)", l, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("README: %q: %v", l, err)
		}
	}
	if checked < 5 {
		t.Errorf("only %d veil command lines found in the README and docs", checked)
	}
	if strings.Contains(string(data), "../veil ") || strings.Contains(string(data), "cd beam && ./veil-beam") {
		t.Error("the README still runs a veil binary that no step builds")
	}
}
