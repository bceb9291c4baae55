package segment

import (
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy"
)

// TestDatasheetMainParameters: the datasheet states the main parameters in
// words: the signals used, region never a feature, the columns the policy
// keeps from the purpose, the weighing and what a customer can do.
func TestDatasheetMainParameters(t *testing.T) {
	cfg := dpConfig(t.TempDir())
	rep := &Report{RunID: "r", LogicalDate: "2026-11-27", NoisySizes: true,
		DP: &DPReport{Epsilon: 1, Delta: 1e-6, Accountant: "rdp", Iterations: 4, ClipRadius: 1}}
	pol := privacy.DefaultPolicy()
	seg := pol.Purposes[privacy.Segmentation]
	seg.Columns = []string{"subject_id", "event_time", "event_type", "item_id", "category", "quantity", "value"}
	pol.Purposes[privacy.Segmentation] = seg
	sheet := string(Datasheet(rep, cfg, pol, []string{privacy.Segmentation}, []string{privacy.Marketing}))
	for _, want := range []string{"## Main parameters", "**Signals used.**", "region is never a feature", "event columns region.",
		"**How they are weighed.**", "Withdraw consent to marketing", "veil subject report"} {
		if !strings.Contains(sheet, want) {
			t.Errorf("datasheet lacks %q", want)
		}
	}
}
