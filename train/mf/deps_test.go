package mf

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestKernelDeps: the kernels import no object store, no Parquet and no
// CLI, so that a program that only trains or scores does not link them.
func TestKernelDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	heavy := regexp.MustCompile(`aws|parquet|cobra`)
	for _, p := range strings.Fields(string(out)) {
		if heavy.MatchString(p) {
			t.Errorf("train/mf depends on %s", p)
		}
	}
}
