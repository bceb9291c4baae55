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
	"github.com/veil-privacy/veil/train"
)

// veil train mf on an events table applies its consent and erasure tables
// like veil train: it trains on the subjects veil train prepare keeps at
// the same date, never on every subject in the file; without a consent
// table it refuses, unless the input is declared public.
func TestTrainMFAppliesConsent(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "20"); code != 0 {
		t.Fatal(msg)
	}
	events := filepath.Join(dir, "shop", "events")
	allow := allowNonPrivatePolicy(t, dir)
	args := []string{"train", "mf", "--in", events, "--epsilon", "inf", "--policy", allow, "--dim", "4", "--epochs", "1", "--baselines=false", "--logical-date", "2026-11-27", "--json"}
	code, out, msg := run(t, args...)
	if code != 0 {
		t.Fatalf("train mf on events: %d %s", code, msg)
	}
	var r struct {
		Subjects int    `json:"subjects"`
		Consent  string `json:"consent"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// What veil train prepare keeps at the same date, with the same
	// interaction settings.
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\nmodel: {epsilon: .inf}\n", events, filepath.Join(dir, "out"))), 0o644)
	if code, _, msg := run(t, "train", "prepare", "--config", cfg, "--logical-date", "2026-11-27", "--out", filepath.Join(dir, "prepared")); code != 0 {
		t.Fatal(msg)
	}
	prepared := filepath.Join(dir, "prepared", "dt=2026-11-27")
	store, _ := dataset.NewFileStore(prepared)
	m, err := dataset.ReadManifest(context.Background(), store, "")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := m.Find(train.InteractionsReportFile)
	b, _ := os.ReadFile(filepath.Join(prepared, f.Key))
	var prep train.InteractionsReport
	json.Unmarshal(b, &prep)
	if r.Subjects == 0 || int64(r.Subjects) != prep.Subjects || !strings.Contains(r.Consent, "2026-11-27") {
		t.Errorf("train mf trained on %d subjects (consent: %q); veil train prepare keeps %d", r.Subjects, r.Consent, prep.Subjects)
	}
	// A prepared table needs no consent table of its own.
	code, out, msg = run(t, "train", "mf", "--in", prepared, "--epsilon", "inf", "--policy", allow, "--dim", "4", "--epochs", "1", "--baselines=false", "--json")
	if code != 0 || !strings.Contains(out, "veil train prepare") {
		t.Errorf("train mf on the prepared table: %d %s %s", code, msg, out)
	}
	// With its consent table beside it, an events table is the shop's
	// population: declaring it public is refused (it would skip consent
	// and erasure).
	if code, _, msg := run(t, append(args, "--no-consent-public-data")...); code != 2 || !strings.Contains(msg, "consent table beside it") {
		t.Errorf("events with consent declared public: exit %d %s", code, msg)
	}
	// Without its consent table, the events table is refused; declared
	// public, it is read whole and the report says so.
	os.RemoveAll(filepath.Join(dir, "shop", "consent"))
	os.RemoveAll(filepath.Join(dir, "shop", "erasure"))
	if code, _, msg := run(t, args...); code != 2 || !strings.Contains(msg, "--no-consent-public-data") {
		t.Errorf("events without consent: exit %d %s", code, msg)
	}
	code, out, msg = run(t, append(args, "--no-consent-public-data")...)
	if code != 0 || !strings.Contains(out, "public data set") {
		t.Errorf("declared public: %d %s %s", code, msg, out)
	}
}

// δ is an explicit flag or a public default: never a function of the
// number of subjects in the input (which is private).
func TestTrainMFDeltaIsPublic(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("subject_id,item_id,event_time,weight\n")
	const subjects = 120_000 // 0.1/N is below 1e-6
	for s := range subjects {
		fmt.Fprintf(&b, "s%d,i%d,2026-11-01T10:00:00Z,1\ns%d,i%d,2026-11-02T10:00:00Z,1\n", s, s%7, s, (s+1)%7)
	}
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(b.String()), 0o644)
	delta := func(extra ...string) float64 {
		t.Helper()
		args := append([]string{"train", "mf", "--in", in, "--epsilon", "inf", "--no-consent-public-data", "--dim", "2", "--epochs", "0.01", "--sampling-rate", "0.01",
			"--baselines=false", "--holdout-last", "1", "--json"}, extra...)
		code, out, msg := run(t, args...)
		if code != 0 {
			t.Fatalf("train mf %v: %d %s", extra, code, msg)
		}
		var r struct {
			Plan struct {
				Delta float64 `json:"delta"`
			} `json:"plan"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r.Plan.Delta
	}
	if d := delta(); d != 1e-6 {
		t.Errorf("default δ %g on %d subjects, want the public default 1e-6", d, subjects)
	}
	if d := delta("--delta", "1e-8"); d != 1e-8 {
		t.Errorf("--delta 1e-8 gave δ %g", d)
	}
}
