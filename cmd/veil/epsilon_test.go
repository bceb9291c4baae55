package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An ε that is not a positive finite number or exactly +∞ is a usage
// error before anything is read or spent: it never turns DP off.
func TestInvalidEpsilonIsUsageError(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--items", "50", "--days", "5"); code != 0 {
		t.Fatal(msg)
	}
	events, ledger := filepath.Join(dir, "shop", "events"), filepath.Join(dir, "ledger")
	bad := []string{"-8", "-.inf", ".nan", "0"}

	// veil train with model.epsilon (and curve ε, and the budget) in the job file.
	for i, eps := range bad {
		for j, section := range []string{
			"model: {dim: 8, accountant: rdp, epsilon: %s}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5}\n",
			"model: {dim: 8, accountant: rdp, epsilon: 8}\nevaluation: {curve: true, curve_epsilons: [1, %s]}\nbudget: {ledger: %s, epsilon: 20, delta: 1.0e-5}\n",
			"model: {dim: 8, accountant: rdp, epsilon: 8}\nbudget: {ledger: %[2]s, epsilon: %[1]s, delta: 1.0e-5}\n",
		} {
			cfg := filepath.Join(dir, fmt.Sprintf("train-%d-%d.yaml", i, j))
			out := filepath.Join(dir, "out", fmt.Sprint(i, "-", j))
			os.WriteFile(cfg, []byte(fmt.Sprintf("events: %s\noutput: %s\n", events, out)+fmt.Sprintf(section, eps, ledger)), 0o644)
			if code, _, msg := run(t, "train", "--config", cfg, "--logical-date", "2026-11-27"); code != 2 || !strings.Contains(msg, "epsilon") {
				t.Errorf("train with ε %s (%q): exit %d (%s), want 2", eps, section, code, msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("train with ε %s wrote %s", eps, out)
			}
		}
	}
	// veil train mf --epsilon: YAML's spellings of ∞ too.
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte("subject_id,item_id\ns1,i1\ns2,i2\n"), 0o644)
	for _, eps := range append(bad, "-inf", "NaN", "-Inf", "1e999x") {
		if code, _, msg := run(t, "train", "mf", "--in", in, "--epsilon", eps, "--ledger", ledger); code != 2 || !strings.Contains(msg, "epsilon") {
			t.Errorf("train mf --epsilon %s: exit %d (%s), want 2", eps, code, msg)
		}
	}
	for _, flags := range [][]string{{"--budget-epsilon", "-1"}, {"--budget-epsilon", "NaN"}, {"--budget-delta", "0"}, {"--budget-delta", "1"}} {
		args := append([]string{"train", "mf", "--in", filepath.Join(dir, "missing.csv"), "--epsilon", "8", "--ledger", ledger}, flags...)
		if code, _, msg := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2 before reading the input", flags, code, msg)
		}
	}
	// veil segment with DP k-means, and veil run with a spec.
	for i, eps := range bad {
		seg := fmt.Sprintf(`events: %s
output: %s/seg
kmeans: {k: "3"}
noisy_sizes_sigma: 3
privacy: {epsilon: %s, delta: 1.0e-6, iterations: 4, clip_radius: 1.5}
budget: {ledger: %s, epsilon: 20, delta: 1.0e-5}
`, events, dir, eps, ledger)
		cfg := filepath.Join(dir, fmt.Sprintf("seg-%d.yaml", i))
		os.WriteFile(cfg, []byte(seg), 0o644)
		if code, _, msg := run(t, "segment", "--config", cfg, "--logical-date", "2026-11-27"); code != 2 || !strings.Contains(msg, "epsilon") {
			t.Errorf("segment with privacy.epsilon %s: exit %d (%s), want 2", eps, code, msg)
		}
		spec := filepath.Join(dir, fmt.Sprintf("spec-%d.yaml", i))
		os.WriteFile(spec, []byte(fmt.Sprintf(`name: nightly
state: %[1]s/state
steps:
  - name: recs
    train:
      events: %[2]s
      output: %[1]s/out/models
      model: {dim: 8, epsilon: %[3]s, accountant: rdp}
      budget: {ledger: %[4]s, epsilon: 20, delta: 1.0e-5, period: month}
`, dir, events, eps, ledger)), 0o644)
		if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-27"); code != 2 || !strings.Contains(msg, "epsilon") {
			t.Errorf("run with model.epsilon %s: exit %d (%s), want 2", eps, code, msg)
		}
	}
	if _, err := os.Stat(ledger); err == nil {
		t.Errorf("an invalid ε spent budget: %s exists", ledger)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("an invalid ε wrote outputs")
	}
}
