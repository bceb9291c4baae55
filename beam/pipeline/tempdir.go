package pipeline

import (
	"context"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// PrivateTemp wraps a function that runs pipelines so that the temporary
// files the Beam SDK leaves behind land in a folder of their own, removed
// when the pipeline ends: the universal runner (Prism, a job server) creates
// an empty beamloopbackworker-* file in os.TempDir for every loopback job
// and never removes it (apache/beam#27569). The folder is made the process's
// TMPDIR for the duration of the run, so call it where one pipeline runs at
// a time: veil-beam runs one, and the tests run theirs one after another.
func PrivateTemp(execute func(context.Context, *beam.Pipeline) error) func(context.Context, *beam.Pipeline) error {
	return func(ctx context.Context, p *beam.Pipeline) error {
		dir, err := os.MkdirTemp("", "veil-beam-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		old, had := os.LookupEnv("TMPDIR")
		os.Setenv("TMPDIR", dir)
		defer func() {
			if had {
				os.Setenv("TMPDIR", old)
			} else {
				os.Unsetenv("TMPDIR")
			}
		}()
		return execute(ctx, p)
	}
}
