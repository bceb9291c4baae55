package mf

import (
	"testing"

	"github.com/veil-privacy/veil/internal/kerneltest"
)

// TestKernelDeps: the kernels import no object store, no Parquet and no
// CLI, so that a program that only trains or scores does not link them.
func TestKernelDeps(t *testing.T) {
	kerneltest.NoHeavyDeps(t, "github.com/veil-privacy/veil/train/mf")
}
