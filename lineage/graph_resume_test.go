package lineage

import (
	"strings"
	"testing"
	"time"
)

// A run interrupted (ABORT with an error) and resumed under the same run id
// until it completed shows as completed, without the old error.
func TestResumedRunShowsFinalState(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	abort := NewEvent("ABORT", t0.Add(time.Minute), "r1", "nightly")
	abort.Run.Facets["errorMessage"] = ErrorMessage("context canceled")
	events := []Event{
		NewEvent("START", t0, "r1", "nightly"),
		abort,
		NewEvent("START", t0.Add(time.Hour), "r1", "nightly"),
		NewEvent("COMPLETE", t0.Add(2*time.Hour), "r1", "nightly"),
	}
	g := BuildGraph(events)
	r := g.Runs["r1"]
	if r.State != "COMPLETE" || r.Error != "" || r.Facets["errorMessage"] != nil {
		t.Errorf("resumed run: state %s, error %q, facets %v", r.State, r.Error, r.Facets)
	}
	// A run that failed still shows its error.
	g = BuildGraph(events[:2])
	if r := g.Runs["r1"]; r.State != "ABORT" || !strings.Contains(r.Error, "context canceled") {
		t.Errorf("aborted run: state %s, error %q", r.State, r.Error)
	}
}
