package release

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// StewardURL is where a job's steward reports go: the configured URL, or
// by default the prefix "_steward" next to the job's output (a prefix of
// its own that release readers skip and that no marketing or engineer
// role is granted). Pipelines set it to STATE/steward.
func StewardURL(configured, output string) string {
	if configured != "" {
		return configured
	}
	return dataset.SiblingURL(output, "_steward")
}

// Steward is a steward report being written: one committed output of
// class steward per run, under STEWARD/JOB/dt=DATE/run=RUN.
type Steward struct {
	out      *dataset.Output
	location string
}

// OpenSteward starts the steward report of a run.
func OpenSteward(ctx context.Context, url string, opt dataset.URLOptions, job string, day time.Time, runID, producer string) (*Steward, error) {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return nil, fmt.Errorf("opening the steward store %s: %w", url, err)
	}
	prefix := dataset.Join(ref.Key, strings.ReplaceAll(job, "/", "_"), "dt="+day.UTC().Format(time.DateOnly), "run="+runID)
	out, err := dataset.NewOutput(ctx, ref.Store, prefix, nil, producer)
	if err != nil {
		return nil, err
	}
	out.SetClass(dataset.ClassSteward)
	return &Steward{out: out, location: out.Location()}, nil
}

// Output is the report's output, for files written by other packages
// (the contributors filter).
func (s *Steward) Output() *dataset.Output { return s.out }

// Location is the report's prefix.
func (s *Steward) Location() string { return s.location }

// PutJSON writes v as an indented JSON file of the report.
func (s *Steward) PutJSON(ctx context.Context, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding steward file %s: %w", name, err)
	}
	return s.out.PutFile(ctx, name, append(b, '\n'), 0)
}

// Commit makes the report visible.
func (s *Steward) Commit(ctx context.Context, meta map[string]string) error {
	_, err := s.out.Commit(ctx, meta)
	return err
}

// Abort removes what was written.
func (s *Steward) Abort(ctx context.Context) { s.out.Abort(ctx) }
