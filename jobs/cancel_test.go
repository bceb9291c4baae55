package jobs

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
)

// Ctrl-C cancels the run's context; the ABORT events of the step and of the
// run are still delivered (with a fresh, bounded context), so no START is
// left without an end, and the audit log records the aborts.
func TestTerminalEventsAfterCancel(t *testing.T) {
	dir := t.TempDir()
	spec := &Spec{Name: "nightly", State: dir, Steps: []StepSpec{{Name: "cohorts"}}}
	opt := Options{LogicalDate: day, Now: time.Now, Log: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }}
	runCtx, cancel := context.WithCancel(context.Background())
	rec, err := newRecorder(runCtx, spec, opt, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	rec.start(runCtx)
	rec.stepStart(runCtx, spec.Steps[0], "step-1")
	cancel()
	rec.stepEnd(runCtx, spec.Steps[0], "step-1", nil, context.Canceled)
	rec.finish(runCtx, nil, context.Canceled)

	store, _ := dataset.NewFileStore(filepath.Join(dir, "lineage"))
	events, err := lineage.ReadEvents(context.Background(), store, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ev := range events {
		got[ev.Run.RunID] = ev.EventType
	}
	if got["run-1"] != "ABORT" || got["step-1"] != "ABORT" {
		t.Errorf("last events after a cancel: %v, want ABORT for the run and the step", got)
	}
	as, _ := dataset.NewFileStore(filepath.Join(dir, "audit"))
	recs, err := lineage.OpenAudit(as, "").Verify(context.Background())
	if err != nil || len(recs) != 3 || recs[2].Outcome != "aborted" {
		t.Errorf("audit records %+v, %v", recs, err)
	}
}
