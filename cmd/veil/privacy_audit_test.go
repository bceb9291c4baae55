package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// veil privacy audit --white-box on a training job (and the old name, veil
// audit privacy, still runs the one-run audit), and on a segment job.
func TestPrivacyAuditWhiteBoxCommand(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "1500", "--items", "200", "--days", "20"); code != 0 {
		t.Fatal(msg)
	}
	cfg := filepath.Join(dir, "train.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\nmodel: {dim: 8, accountant: rdp, epsilon: 2}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: month}\n",
		filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out"), filepath.Join(dir, "ledger"))), 0o644)
	code, out, msg := run(t, "privacy", "audit", "--white-box", "--config", cfg, "--logical-date", "2026-11-27", "--canaries", "1000", "--json")
	if code != 0 {
		t.Fatalf("privacy audit --white-box: %d %s\n%s", code, msg, out)
	}
	var r struct {
		Lower  float64 `json:"epsilon_lower_bound"`
		Proven float64 `json:"proven_epsilon"`
		Checks []struct {
			Failed bool `json:"failed"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || !(r.Lower > 0) || r.Lower > r.Proven || len(r.Checks) == 0 {
		t.Fatalf("result %s (%v)", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("the audit wrote outputs: %v", err)
	}
	seg := filepath.Join(dir, "segment.yaml")
	os.WriteFile(seg, []byte(fmt.Sprintf("events: %s\noutput: %s\nkmeans: {k: \"4\"}\nnoisy_sizes_sigma: 5\nprivacy: {epsilon: 2, delta: 1.0e-6, iterations: 4, clip_radius: 1}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5, period: month}\n",
		filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out2"), filepath.Join(dir, "ledger"))), 0o644)
	code, out, msg = run(t, "privacy", "audit", "--white-box", "--segment-config", seg, "--runs", "50", "--draws", "5000", "--subjects", "500")
	if code != 0 || !strings.Contains(out, "DP k-means") || !strings.Contains(out, "discrete Gaussian") {
		t.Fatalf("privacy audit --white-box --segment-config: %d %s\n%s", code, msg, out)
	}
	t.Log(out)
}
