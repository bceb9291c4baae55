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
)

// catalogShop generates a small shop under dir and returns its events and
// the key of one of their files.
func catalogShop(t *testing.T, dir string) (events, file string) {
	t.Helper()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--items", "60", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	events = filepath.Join(dir, "shop", "events")
	s, _ := dataset.NewFileStore(events)
	m, err := dataset.ReadManifest(context.Background(), s, "")
	if err != nil || len(m.Files) == 0 {
		t.Fatalf("events manifest %+v, %v", m, err)
	}
	return events, m.Files[0].Key
}

// A catalog is public by declaration, so it must be one: a table whose
// manifest declares the catalog contract, without subject ids, apart from
// the events. The events table (every item and category of the private
// data, before consent), a file of it or a folder that holds it are
// refused as a catalog by training jobs, segment jobs and veil train mf,
// with exit 2 and before anything is spent; the shop's catalog, or a file
// of it, is accepted.
func TestCatalogIsACatalog(t *testing.T) {
	dir := t.TempDir()
	events, file := catalogShop(t, dir)
	ledger := filepath.Join(dir, "ledger")
	budgetYAML := fmt.Sprintf("budget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: month}\n", ledger)
	jobs := map[string]func(catalog string) []string{
		"train job": func(catalog string) []string {
			cfg := filepath.Join(dir, "train.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\ncatalog: %s\nmodel: {dim: 4, accountant: rdp, epsilon: 4, epochs: 1}\n%s",
				events, filepath.Join(dir, "out-train"), catalog, budgetYAML)), 0o644)
			return []string{"train", "--config", cfg, "--logical-date", "2026-11-27"}
		},
		"segment job": func(catalog string) []string {
			cfg := filepath.Join(dir, "segment.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\ncatalog: %s\nkmeans: {k: \"3\", seed: 1}\ncohort_floor: {min_size: 20, small: merge}\nnoisy_sizes_sigma: 3\nprivacy: {epsilon: 1, delta: 1.0e-6, iterations: 3, clip_radius: 1.5}\n%s",
				events, filepath.Join(dir, "out-segment"), catalog, budgetYAML)), 0o644)
			return []string{"segment", "--config", cfg, "--logical-date", "2026-11-27"}
		},
		"train mf": func(catalog string) []string {
			return []string{"train", "mf", "--in", events, "--catalog", catalog, "--epsilon", "4", "--dim", "4", "--epochs", "1", "--baselines=false",
				"--logical-date", "2026-11-27", "--ledger", ledger}
		},
	}
	for _, bad := range []string{events, "file://" + events + "/", filepath.Join(events, file), filepath.Join(events, filepath.Dir(file)), filepath.Join(dir, "shop"),
		filepath.Join(dir, "shop", "consent")} {
		for name, job := range jobs {
			code, _, msg := run(t, job(bad)...)
			if code != 2 || !strings.Contains(msg, bad) || !strings.Contains(msg, "catalog") {
				t.Errorf("%s with catalog %s: exit %d, want 2 naming the catalog (%s)", name, bad, code, msg)
			}
		}
	}
	if _, err := os.Stat(ledger); err == nil {
		t.Fatal("a job with a catalog that is not one spent budget")
	}
	cs, _ := dataset.NewFileStore(filepath.Join(dir, "shop", "catalog"))
	cm, err := dataset.ReadManifest(context.Background(), cs, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, good := range []string{filepath.Join(dir, "shop", "catalog"), filepath.Join(dir, "shop", "catalog", cm.Files[0].Key)} {
		if code, out, msg := run(t, jobs["train mf"](good)...); code != 0 {
			t.Errorf("train mf with the shop's catalog %s: exit %d %s\n%s", good, code, msg, out)
		}
	}
}

// veil train mf on one file or one partition of the shop's events is on
// the shop's subjects, as on the table: --no-consent-public-data is
// refused (exit 2) and, without it, the consent and erasure tables beside
// the events table apply and the events' budget is charged.
func TestTrainMFPartOfEvents(t *testing.T) {
	dir := t.TempDir()
	events, file := catalogShop(t, dir)
	ledger := filepath.Join(dir, "ledger")
	for _, part := range []string{filepath.Join(events, file), filepath.Join(events, filepath.Dir(file))} {
		code, out, msg := run(t, "train", "mf", "--in", part, "--no-consent-public-data", "--epsilon", "inf", "--dim", "4", "--epochs", "1", "--baselines=false")
		if code != 2 || !strings.Contains(msg, part) || !strings.Contains(msg, "--no-consent-public-data") {
			t.Errorf("--no-consent-public-data on %s: exit %d, want 2 (%s)\n%s", part, code, msg, out)
		}
		code, out, msg = run(t, "train", "mf", "--in", part, "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "4", "--dim", "4", "--epochs", "1", "--baselines=false",
			"--logical-date", "2026-11-27", "--ledger", ledger, "--json")
		var rep mfReport
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("train mf on %s: exit %d %s\n%s", part, code, msg, out)
		}
		if !strings.Contains(rep.Consent, "consent and erasure tables") || rep.Subjects != 0 || rep.Steward == "" {
			t.Errorf("train mf on %s: consent %q, %d subjects printed, steward report %q: want consent applied and the public report", part, rep.Consent, rep.Subjects, rep.Steward)
		}
	}
	s, _ := dataset.NewFileStore(events)
	m, _ := dataset.ReadManifest(context.Background(), s, "")
	if recs, err := ledgerOf(t, ledger).Records(context.Background(), m.Identity); err != nil || len(recs) != 2 {
		t.Errorf("records of the events' identity: %+v, %v", recs, err)
	}
	// A file that no veil table holds keeps the consent and erasure
	// tables beside the file itself.
	plain := filepath.Join(dir, "plain")
	os.MkdirAll(plain, 0o755)
	data, _ := os.ReadFile(filepath.Join(events, file))
	os.WriteFile(filepath.Join(plain, "events.parquet"), data, 0o644)
	for _, t2 := range []string{"consent", "erasure"} {
		if err := os.CopyFS(filepath.Join(plain, t2), os.DirFS(filepath.Join(dir, "shop", t2))); err != nil {
			t.Fatal(err)
		}
	}
	code, out, msg := run(t, "train", "mf", "--in", filepath.Join(plain, "events.parquet"), "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "4", "--dim", "4", "--epochs", "1",
		"--baselines=false", "--logical-date", "2026-11-27", "--ledger", ledger, "--json")
	var rep mfReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !strings.Contains(rep.Consent, "consent and erasure tables") {
		t.Errorf("train mf on a plain file with its consent table beside it: exit %d %s\n%s", code, msg, out)
	}
}

// The steward report of veil train mf goes next to the ledger the run was
// charged in: the policy's when the policy sets budgets and --ledger is
// not given, never a folder "steward" in the working directory.
func TestTrainMFStewardBesideThePolicyLedger(t *testing.T) {
	dir := t.TempDir()
	events, _, policy := stewardShop(t, dir, func(_, identity string) string { return identity })
	cwd := t.TempDir()
	t.Chdir(cwd)
	code, out, msg := run(t, "train", "mf", "--in", events, "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "4", "--dim", "4", "--epochs", "1", "--baselines=false",
		"--logical-date", "2026-11-27", "--policy", policy, "--json")
	var rep mfReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("train mf under the policy's budget: exit %d %s\n%s", code, msg, out)
	}
	if !strings.Contains(rep.Steward, filepath.Join(dir, "steward")) {
		t.Errorf("steward report at %q, want it next to the policy's ledger %s", rep.Steward, filepath.Join(dir, "ledger"))
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("train mf wrote %d entries into the working directory (%s)", len(entries), entries[0].Name())
	}
}
