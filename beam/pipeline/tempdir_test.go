package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
)

// A pipeline run on Prism leaves nothing in the temporary folder (the Beam
// SDK's beamloopbackworker-* files go to a folder of the run's own).
func TestNoTempFilesLeft(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p, s := beam.NewPipelineWithRoot()
	passert.Count(s, beam.Create(s, 1, 2, 3), "three", 3)
	if err := execute(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(left) > 0 {
		t.Errorf("a pipeline run left %v in the temporary folder", left)
	}
	if got := os.Getenv("TMPDIR"); got != tmp {
		t.Errorf("TMPDIR is %q after the run, want %q", got, tmp)
	}
}
