package kmeans

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestKernelDeps keeps the kernels light: neither the package nor anything
// it imports may be object storage (AWS), Parquet or the CLI (cobra), so
// that a program or module that clusters does not link them.
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
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/veil-privacy/veil/segment/kmeans") {
		t.Fatalf("go list -deps did not list the package itself:\n%s", out)
	}
	for _, p := range deps {
		if heavy.MatchString(p) {
			t.Errorf("segment/kmeans depends on %s", p)
		}
	}
}
