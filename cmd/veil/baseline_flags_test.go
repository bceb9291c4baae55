package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Out-of-range settings of the non-private baseline are usage errors that
// name the flag, before the input is read; 0 means the model's setting.
func TestBaselineFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, flags := range [][]string{
		{"--baseline-epochs", "-1"}, {"--baseline-epochs", "1001"}, {"--baseline-epochs", "NaN"},
		{"--baseline-sampling-rate", "-0.1"}, {"--baseline-sampling-rate", "1.5"}, {"--baseline-sampling-rate", "NaN"},
		{"--baseline-learning-rate", "-0.05"}, {"--baseline-learning-rate", "+Inf"}, {"--baseline-learning-rate", "NaN"},
	} {
		args := append([]string{"train", "mf", "--in", filepath.Join(dir, "missing.csv"), "--epsilon", "8", "--ledger", filepath.Join(dir, "ledger")}, flags...)
		if code, _, msg := run(t, args...); code != 2 || !strings.Contains(msg, flags[0]) {
			t.Errorf("%v: exit %d (%s), want 2 naming %s before reading the input", flags, code, msg, flags[0])
		}
	}
	// In range one by one, but a plan that would never end (5e9 steps):
	// refused before the input is read, not after the budget is spent.
	args := []string{"train", "mf", "--in", filepath.Join(dir, "missing.csv"), "--epsilon", "8", "--ledger", filepath.Join(dir, "ledger"), "--baseline-sampling-rate", "1e-9"}
	if code, _, msg := run(t, args...); code != 2 || !strings.Contains(msg, "--baseline-") || !strings.Contains(msg, "steps") {
		t.Errorf("--baseline-sampling-rate 1e-9: exit %d (%s), want 2 naming the baseline's steps", code, msg)
	}
}
