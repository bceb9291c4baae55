package segment

import (
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy"
)

// Whether a report releases exact counts is decided by the run's
// configuration, not by its profiles: a DP report without profiles keeps
// its exact counts out of Public and out of the datasheet.
func TestNoisyKeyedOnConfigNotProfiles(t *testing.T) {
	cfg := DefaultConfig()
	pol := privacy.DefaultPolicy()
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", Subjects: 4321, Events: 98765, Exported: 3210,
		Filter: privacy.Report{RowsRead: 123456, RowsKept: 98765},
		DP:     &DPReport{Epsilon: 1, Delta: 1e-6, Accountant: "rdp", Clipped: 77, NormalizedObjective: 1.5}}
	p := rep.Public()
	if p.Subjects != 0 || p.Events != 0 || p.Exported != 0 || p.Filter.RowsRead != 0 || p.DP.Clipped != 0 {
		t.Errorf("DP report without profiles: Public keeps exact counts: %+v", p)
	}
	sheet := string(Datasheet(rep, cfg, pol, []string{privacy.Segmentation}, []string{privacy.Marketing}))
	for _, n := range []string{"4321", "98765", "3210", "123456"} {
		if strings.Contains(sheet, n) {
			t.Errorf("DP datasheet without profiles gives the exact count %s", n)
		}
	}
}
