package segment

import (
	"strings"
	"testing"
)

// The datasheet says how many of the asked-for cohorts survived and why,
// instead of "found 5 cohorts" followed by a list of 2.
func TestDatasheetSaysWhichCohortsSurvived(t *testing.T) {
	rep := &Report{K: 5, Cohorts: 2}
	got := survivors(rep, Floor{MinSize: 50, Small: "merge"})
	for _, want := range []string{"2 of the 5", "other 3", "below the floor of 50", "merged into the nearest cohort"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := survivors(&Report{K: 4, Cohorts: 4}, Floor{MinSize: 50}); got != "All 4 are in this export." {
		t.Errorf("all survived: %q", got)
	}
}
