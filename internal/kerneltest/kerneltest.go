// Package kerneltest checks, in the tests of veil's numeric kernels
// (segment/kmeans, train/mf), that they stay light.
package kerneltest

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// heavy matches what a kernel must not link: object storage (the AWS
// SDK), Parquet, the CLI (cobra).
var heavy = regexp.MustCompile(`aws|parquet|cobra`)

// NoHeavyDeps fails t if the package in the test's directory, whose
// import path is pkg, or anything it imports is object storage, Parquet
// or the CLI, so that a program that only clusters, trains or scores does
// not link them. It runs go list -deps; without the go tool it skips.
func NoHeavyDeps(t *testing.T, pkg string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, pkg) {
		t.Fatalf("go list -deps did not list %s itself:\n%s", pkg, out)
	}
	for _, p := range deps {
		if heavy.MatchString(p) {
			t.Errorf("%s depends on %s", pkg, p)
		}
	}
}
