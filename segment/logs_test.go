package segment

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// A DP segmentation logs no exact count of the private data at any level
// (scheduler logs are read by many), and says where the steward report is.
func TestDPRunLogsNoExactCounts(t *testing.T) {
	dir, _ := shop(t, 400, 10)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := Run(ctx, dpConfig(dir), logical, dataset.URLOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, k := range []string{"subjects", "events", "exported", "suppressed", "inertia", "silhouette"} {
			if _, ok := rec[k]; ok {
				t.Errorf("a DP run logs %s: %s", k, line)
			}
		}
	}
	if !strings.Contains(logs.String(), rep.StewardReport) {
		t.Errorf("the logs do not say where the steward report is:\n%s", logs.String())
	}
}

// A DP segmentation that fails after its budget was spent says what went
// wrong without an exact count of the private data: the error text goes
// to stderr, the lineage errorMessage and the audit log, not only to the
// steward. Too few consented subjects for k is such a failure; its text
// holds no digit at all (not even k, which would bound the count).
func TestDPRunErrorsHoldNoExactCounts(t *testing.T) {
	dir, _ := shop(t, 40, 5)
	cfg := dpConfig(dir)
	cfg.KMeans.K = "60"
	_, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err == nil {
		t.Fatal("k = 60 for 40 subjects ran")
	}
	if n := ledgerLen(t, dir); n != 1 {
		t.Fatalf("the run failed before spending (%d ledger records): %v", n, err)
	}
	if d := regexp.MustCompile(`\d+`).FindString(err.Error()); d != "" {
		t.Errorf("the error of a DP run that spent holds the figure %s: %v", d, err)
	}
	if !strings.Contains(err.Error(), "fewer consented subjects than k") {
		t.Errorf("the error does not say what went wrong: %v", err)
	}
}

// Prepared tables and assignments are not DP releases, but a DP pipeline
// prepares and assigns too: their exact counts are logged at debug level
// only, not at info, which scheduler logs keep.
func TestPrepareAndAssignLogCountsAtDebugOnly(t *testing.T) {
	dir, _ := shop(t, 300, 5)
	cfg := DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.Steward = filepath.Join(dir, "steward")
	cfg.KMeans.K = "3"
	cfg.Floor = Floor{MinSize: 5, Small: "merge"}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prep, err := Prepare(ctx, cfg, logical, filepath.Join(dir, "prepared"), 2, dataset.URLOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := open.Ref(ctx, prep.Output, dataset.URLOptions{})
	m, _, err := Fit(ctx, cfg, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AssignPrepared(ctx, cfg, logical, prep.Output, m, dataset.URLOptions{}, log); err != nil {
		t.Fatal(err)
	}
	debug := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, k := range []string{"subjects", "events", "exported"} {
			if _, ok := rec[k]; ok {
				if rec["level"] != "DEBUG" {
					t.Errorf("%s logged at %s: %s", k, rec["level"], line)
				}
				debug++
			}
		}
	}
	if debug == 0 {
		t.Errorf("the counts are not logged at debug level either:\n%s", logs.String())
	}
}
