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

// BenchmarkPlanCurve plans configs/train.yaml's privacy-utility curve (ε 1,
// 2, 4, 8, each with its histogram) and spends it with the model in one
// record, as train.planAndSpend does with evaluation.curve: true.
func BenchmarkPlanCurve(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		memo.reset()
		c, _ := trainYAMLPlan(b)
		hist8, _ := Calibrate("pld", 4, 1, 1, 1e-6)
		evs := []Event{{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: hist8.NoiseMultiplier, Count: 1},
			{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: c.NoiseMultiplier, Count: 5}}
		for _, eps := range []float64{1, 2, 4, 8} {
			h, err := Calibrate("pld", eps/2, 1, 1, 1e-6)
			if err != nil {
				b.Fatal(err)
			}
			hist := Event{Mechanism: SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: h.NoiseMultiplier, Count: 1}
			p, err := CalibrateWith("pld", eps, 0.4, 5, 1e-6, hist)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, hist, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: p.NoiseMultiplier, Count: 5})
		}
		if _, err := Spent("pld", 1e-5, evs...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrivacySpent is one `veil privacy` question: the ε of
// configs/train.yaml's DP-SGD steps alone.
func BenchmarkPrivacySpent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		memo.reset()
		if _, err := Spent("pld", 1e-6, Event{Mechanism: SubsampledGaussian, SamplingRate: 0.4, NoiseMultiplier: 1.0534104947758145, Count: 5}); err != nil {
			b.Fatal(err)
		}
	}
}
