package segment

import (
	"errors"
	"math"
	"testing"

	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// TestWhiteBoxDPKMeans audits DP k-means at ε 1, 2 and 8 (passes, and
// states its bound), and flags a noise scale of 0.8 of the plan's.
func TestWhiteBoxDPKMeans(t *testing.T) {
	x, _ := blobs(2000, 4, 4, 3, 9)
	for i := range x.Data {
		x.Data[i] = (x.Data[i] + 11) / 44
	}
	wc := DefaultWhiteBoxConfig()
	wc.noise = dp.NewTestSource(3)
	// σ as cfg.Plan calibrates it for ε 1, 2 and 8 (PLD, 8 iterations, δ
	// 1e-6); the proven ε is the accountant's for it.
	sigmas := map[float64]float64{1: 16.9002, 2: 8.92251, 8: 2.61195}
	for _, eps := range []float64{1, 2, 8} {
		cfg := kmeans.DPConfig{Epsilon: eps, Delta: 1e-6, Iterations: 8, ClipRadius: 1}
		wc.sigma = sigmas[eps]
		rep, err := AuditDPKMeans(ctx, x, 4, cfg, wc, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: proven ε %.4g, lower bound %.4g (%.3f of it) at %.0f%%, %d runs, %d noise values, %.2fs",
			rep.Mechanism, rep.ProvenEpsilon, rep.EpsilonLowerBound, rep.Tightness(), 100*rep.Confidence, rep.Runs, rep.Observations, rep.Seconds)
		if err := rep.Err(); err != nil {
			t.Errorf("ε %v: %v", eps, err)
		}
		if rep.Tightness() < 0.8 || rep.Tightness() > 1.05 { // 1.05: see the counts audit's test
			t.Errorf("ε %v: lower bound %.4g, proven %.4g", eps, rep.EpsilonLowerBound, rep.ProvenEpsilon)
		}
	}
	cfg := kmeans.DPConfig{Epsilon: 2, Delta: 1e-6, Iterations: 8, ClipRadius: 1}
	wc.noiseScale, wc.sigma = 0.8, sigmas[2]
	rep, err := AuditDPKMeans(ctx, x, 4, cfg, wc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, audit.ErrFault) || !rep.Failed(CheckNoiseScale) {
		t.Errorf("noise 0.8× plan: %v", err)
	} else {
		t.Logf("noise 0.8× plan: %v", err)
	}
}

// The audit expects the noise dp.Gaussian draws: σ raised by the lattice
// rounding (dp.NoiseScale), for the m·D sums and the m counts of each
// iteration, pooled; not the σ asked for, which its two-sided scale test
// would flag on wide features.
func TestWhiteBoxDPKMeansExpectsTheDrawnNoiseScale(t *testing.T) {
	x, _ := blobs(500, 64, 4, 3, 9)
	for i := range x.Data {
		x.Data[i] = (x.Data[i] + 11) / 44
	}
	const k, sigma = 4, 2.61195
	cfg := kmeans.DPConfig{Epsilon: 8, Delta: 1e-6, Iterations: 8, ClipRadius: 1}
	wc := DefaultWhiteBoxConfig()
	wc.noise, wc.sigma, wc.Runs = dp.NewTestSource(3), sigma, 2
	rep, err := AuditDPKMeans(ctx, x, k, cfg, wc, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.ReleasedClusters(k)
	vs := dp.NoiseScale(sigma*cfg.ClipRadius, cfg.ClipRadius, m*x.D) / cfg.ClipRadius
	vc := dp.NoiseScale(sigma, 1, m)
	want := math.Sqrt((float64(m*x.D)*vs*vs + float64(m)*vc*vc) / float64(m*x.D+m))
	if got := rep.Estimates[0].Plan; math.Abs(got/want-1) > 1e-12 || !(got > sigma) {
		t.Errorf("the audit expects noise σ %.8g, dp.Gaussian draws %.8g (asked for %.8g)", got, want, sigma)
	}
}
