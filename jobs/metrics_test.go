package jobs

import (
	"math"
	"testing"

	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

// exactGauges are the metrics that hold exact figures of the private data:
// rows read and dropped by reason (differencing two days' erased counts
// tells one person's erasure), recall on the private holdout, the warnings
// drawn from private data and the drift of exact cohort make-ups.
var exactGauges = []string{"veil_step_rows_read", "veil_step_rows_dropped", "veil_train_recall_at_20", "veil_step_monitoring_warnings", "veil_step_drift_psi_max"}

// gauges lists the series of each metric family of m, by name.
func gauges(t *testing.T, m *Metrics) map[string]int {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		out[mf.GetName()] = len(mf.GetMetric())
	}
	return out
}

// A step that made a DP release exports no gauge of exact figures, only
// its duration and the ledger's charge; a step without one (pseudonymize,
// plain k-means, non-private training) keeps them.
func TestMetricsOfDPStepsHoldNoExactFigures(t *testing.T) {
	filter := privacy.Report{RowsRead: 1000, RowsKept: 990, RowsDropped: map[string]int64{"erased": 1, "withdrawn": 9}}
	mon := &segment.Monitoring{Warnings: []string{"cohort 2 over-represents EU"}, Drift: &segment.Drift{}}
	tests := []struct {
		name string
		step StepResult
		dp   bool
	}{
		{"dp training", StepResult{Step: "train", Train: &train.Report{Filter: filter, Guarantee: &train.Guarantee{Epsilon: 1},
			Charged: &release.Charge{Epsilon: 1.5}, Eval: train.Eval{Model: mf.Metrics{Recall20: 0.25}}, Warnings: []string{"w"}}}, true},
		{"dp k-means", StepResult{Step: "segment", Segment: &segment.Report{Filter: filter, DP: &segment.DPReport{Epsilon: 1},
			Spent: &budget.Record{Epsilon: 1}, Monitoring: mon}}, true},
		{"noisy sizes", StepResult{Step: "segment", Segment: &segment.Report{Filter: filter, NoisySizes: true,
			Spent: &budget.Record{Epsilon: 0.1}, Monitoring: mon}}, true},
		{"non-private training", StepResult{Step: "train", Train: &train.Report{Filter: filter, Model: mf.Config{Epsilon: math.Inf(1)},
			Eval: train.Eval{Model: mf.Metrics{Recall20: 0.25}}, Warnings: []string{"w"}}}, false},
		{"plain k-means", StepResult{Step: "segment", Segment: &segment.Report{Filter: filter, Monitoring: mon}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics("nightly")
			m.Step(tc.step)
			got := gauges(t, m)
			if got["veil_step_duration_seconds"] != 1 {
				t.Errorf("no duration: %v", got)
			}
			if tc.dp && got["veil_step_epsilon_spent"] != 1 {
				t.Errorf("DP step without its charge: %v", got)
			}
			for _, name := range exactGauges {
				if name == "veil_train_recall_at_20" && tc.step.Train == nil || name == "veil_step_drift_psi_max" && tc.step.Segment == nil {
					continue
				}
				if n := got[name]; tc.dp && n > 0 {
					t.Errorf("DP step exports %s (%d series)", name, n)
				} else if !tc.dp && n == 0 {
					t.Errorf("step without a DP release lost %s", name)
				}
			}
		})
	}
}
