package accountant

import "testing"

// trainYAMLPlan is what `veil train --config configs/train.yaml` asks the
// accountant before reading data (mf.Config.MakePlan with a catalog, then
// the spend): the histogram calibrated alone to half of ε 8, DP-SGD (q 0.4,
// 5 steps) calibrated with it to ε 8 at δ 1e-6, then the releases'
// ε at the budget's δ 1e-5, as release.Spend, budget.Ledger.Spend and
// release.Breakdown each ask it.
func trainYAMLPlan(tb testing.TB) (Calibration, Result) {
	hist, err := Calibrate("pld", 4, 1, 1, 1e-6)
	if err != nil {
		tb.Fatal(err)
	}
	h := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: hist.NoiseMultiplier, Count: 1}
	c, err := CalibrateWith("pld", 8, 0.4, 5, 1e-6, h)
	if err != nil {
		tb.Fatal(err)
	}
	evs := []Event{h, {Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: c.NoiseMultiplier, Count: 5}}
	var r Result
	for range 3 {
		if r, err = Spent("pld", 1e-5, evs...); err != nil {
			tb.Fatal(err)
		}
	}
	return c, r
}

func BenchmarkPlanTrainYAML(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		memo.reset()
		trainYAMLPlan(b)
	}
}
