package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// allowNonPrivatePolicy writes configs/policy.yaml with the steward's
// switch for non-private releases on, and returns its path.
func allowNonPrivatePolicy(t *testing.T, dir string) string {
	t.Helper()
	pol, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy-allow.yaml")
	os.WriteFile(path, []byte(strings.Replace(string(pol), "non_private: deny", "non_private: allow", 1)), 0o644)
	return path
}

// veil train mf --epsilon inf on the shop's subjects releases a model
// without DP: refused with exit 3 and one line unless the steward's
// policy allows it; a declared public data set needs no switch.
func TestTrainMFNonPrivateNeedsTheStewardsSwitch(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--items", "60", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	args := []string{"train", "mf", "--in", filepath.Join(dir, "shop", "events"), "--epsilon", "inf", "--dim", "2", "--epochs", "1", "--baselines=false", "--logical-date", "2026-11-27"}
	code, _, msg := run(t, args...)
	if code != 3 || !strings.Contains(msg, "non_private: allow") || strings.Count(strings.TrimSpace(msg), "\n") > 0 {
		t.Errorf("--epsilon inf without the switch: exit %d, %q", code, msg)
	}
	if code, out, msg := run(t, append(args, "--policy", allowNonPrivatePolicy(t, dir))...); code != 0 || !strings.Contains(out, "WITHOUT differential privacy") {
		t.Errorf("--epsilon inf with the switch: exit %d %s %s", code, msg, out)
	}
}
