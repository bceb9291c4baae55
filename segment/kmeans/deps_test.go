package kmeans

import (
	"testing"

	"github.com/veil-privacy/veil/internal/kerneltest"
)

// TestKernelDeps keeps the kernels light: neither the package nor anything
// it imports may be object storage (AWS), Parquet or the CLI (cobra), so
// that a program or module that clusters does not link them.
func TestKernelDeps(t *testing.T) {
	kerneltest.NoHeavyDeps(t, "github.com/veil-privacy/veil/segment/kmeans")
}
