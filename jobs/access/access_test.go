package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
)

// TestDeciding: the record that decides a purpose is its latest (of two at
// the same time, the one that does not grant), a TC string speaks for
// every purpose, and an opt-out is decided by the opt-out records.
func TestDeciding(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 1, h, 0, 0, 0, time.UTC) }
	pol := privacy.DefaultPolicy()
	pol.OptOut.Sources = []string{"gpc"}
	recs := []Record{
		{Purpose: "marketing", Status: "granted", RecordedAt: at(1), Source: "cmp"},
		{Purpose: "personalization", Status: "granted", RecordedAt: at(2), Source: "cmp"},
		{Purpose: "personalization", Status: "withdrawn", RecordedAt: at(2), Source: "support"},
		{Status: "granted", RecordedAt: at(3), Source: "tcf", TCString: true},
		{Purpose: "marketing", Status: "denied", RecordedAt: at(4), Source: "gpc"},
	}
	tests := []struct {
		purpose string
		state   privacy.State
		want    []int
	}{
		{"personalization", privacy.Granted, []int{3}}, // the TC string is later
		{"analytics", privacy.Granted, []int{3}},
		{"marketing", privacy.OptedOut, []int{4}},
	}
	for _, tc := range tests {
		got := deciding(recs, tc.purpose, tc.state, pol)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %+v", tc.purpose, got)
		}
		for i, k := range tc.want {
			if got[i] != recs[k] {
				t.Errorf("%s: %+v, want %+v", tc.purpose, got[i], recs[k])
			}
		}
	}
	// Ties deny: without the TC string, the withdrawal at the same time
	// as the grant decides.
	if got := deciding(recs[:3], "personalization", privacy.Withdrawn, pol); len(got) != 1 || got[0] != recs[2] {
		t.Errorf("tie: %+v", got)
	}
}

// TestBuildRefusesSegregatedSpecs: each zone has its own consent and
// erasure tables, so a segregated spec's report could miss an erasure
// recorded in another zone's: it is refused as a spec error.
func TestBuildRefusesSegregatedSpecs(t *testing.T) {
	spec := &jobs.Spec{Name: "zoned", Segregation: &jobs.Segregation{}}
	if _, _, err := tables(spec); !errors.Is(err, jobs.ErrSpec) || !strings.Contains(err.Error(), "zone") {
		t.Fatalf("segregated spec: %v, want a spec error naming the zones", err)
	}
}
