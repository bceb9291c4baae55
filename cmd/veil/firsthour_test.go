package main

import (
	"path/filepath"
	"strings"
	"testing"
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
	// --plan without a date still plans.
	if code, out, msg := run(t, "run", spec, "--plan"); code != 0 || !strings.Contains(out, "pipeline") {
		t.Errorf("--plan without a date: %d %s\n%s", code, msg, out)
	}
}
