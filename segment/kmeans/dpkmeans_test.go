package kmeans

import (
	"slices"
	"testing"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/dp"
)

func TestFitDPNoiseMatters(t *testing.T) {
	x, _ := blobs(20000, 4, 4, 3, 9)
	// Blobs live in a box of ±10: move them into [0, 1]^4, inside the ball
	// of radius 1.
	for i := range x.Data {
		x.Data[i] = (x.Data[i] + 11) / 44
	}
	cfg := DPConfig{Epsilon: 1, Delta: 1e-6, Iterations: 15, ClipRadius: 1}
	np, _ := (&KMeans{K: 4, NInit: 4, Seed: 1}).Fit(ctx, x)
	// The median over seeds of the objective, relative to non-private
	// k-means (DP-Lloyd starts from data-independent centres, so some
	// seeds land in worse local optima).
	objective := func(sigma float64) float64 {
		var ratios []float64
		for seed := range uint64(7) {
			r, err := FitDP(ctx, x, 4, cfg, sigma, dp.NewTestSource(seed), seed)
			if err != nil {
				t.Fatal(err)
			}
			ratios = append(ratios, Objective(x, r.Centroids)/np.Inertia)
		}
		slices.Sort(ratios)
		return ratios[len(ratios)/2]
	}
	quiet, loud := objective(1e-3), objective(2000)
	if quiet > 1.5 {
		t.Errorf("with almost no noise the objective is %.2f times the non-private one", quiet)
	}
	if !(loud > quiet) {
		t.Errorf("more noise did not hurt: %.2f vs %.2f", loud, quiet)
	}
	t.Logf("normalized objective: σ 1e-3 → %.3f, σ 2000 → %.3f", quiet, loud)
}

func TestDPPlan(t *testing.T) {
	cfg := DPConfig{Epsilon: 2, Delta: 1e-6, Iterations: 8, ClipRadius: 1, Accountant: "rdp"}
	sigma, ev, spent, err := cfg.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if spent.Epsilon > 2 || ev.Count != 8 || ev.SamplingRate != 1 {
		t.Fatalf("plan %v %+v %+v", sigma, ev, spent)
	}
	// The spend is the Gaussian mechanism with noise multiplier σ/√2, 8 times.
	again, _ := accountant.Spent("rdp", 1e-6, accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: sigma / 1.4142135623730951, Count: 8})
	if diff := again.Epsilon - spent.Epsilon; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("σ %v does not give the planned ε: %v vs %v", sigma, again.Epsilon, spent.Epsilon)
	}
}

// TestFitDPKeepsEveryCluster: from its public start DP k-means finds
// every one of 6 separated blobs at ε = 1 (the 1.38 of issue 22 was
// clusters left empty by a data-independent start), within 8% of the
// non-private objective (median of 5 runs; without noise all 5 are at
// 1.000: on blobs this tight, ε = 1 noise on clusters of 5000 costs 3-8%,
// and a wrong start would cost far more), and coordinates that no subject
// uses (empty hash buckets) stay exactly 0 in every centre.
func TestFitDPKeepsEveryCluster(t *testing.T) {
	b, truth := blobs(30000, 4, 6, 1, 5)
	x := NewMatrix(b.N, 8)
	for i := range b.N {
		for j, v := range b.Row(i) {
			x.Row(i)[j] = min(max((v+12)/24, 0), 1)
		}
	}
	cfg := DPConfig{Epsilon: 1, Delta: 1e-6, Iterations: 10, ClipRadius: 2, Accountant: "rdp"}
	sigma, _, _, err := cfg.Plan()
	if err != nil {
		t.Fatal(err)
	}
	ClipRows(x, cfg.ClipRadius)
	np, err := (&KMeans{K: 6, NInit: 4, Seed: 1}).Fit(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	var ratios []float64
	for seed := range uint64(5) {
		r, err := FitDP(ctx, x, 6, cfg, sigma, dp.NewTestSource(seed), seed)
		if err != nil {
			t.Fatal(err)
		}
		if r.Centroids.N != 6 {
			t.Fatalf("%d centres", r.Centroids.N)
		}
		for j := range 6 {
			if row := r.Centroids.Row(j); row[4] != 0 || row[5] != 0 || row[6] != 0 || row[7] != 0 {
				t.Errorf("seed %d: centre %d is %v outside the data's coordinates", seed, j, row)
			}
		}
		labels, _ := Assign(x, r.Centroids)
		sizes := make([]int, 6)
		for _, l := range labels {
			sizes[l]++
		}
		// The blobs hold about 5000 subjects each.
		if slices.Min(sizes) < 1000 {
			t.Errorf("seed %d: cluster sizes %v (blobs %v)", seed, sizes, blobSizes(truth, 6))
		}
		ratios = append(ratios, Objective(x, r.Centroids)/np.Inertia)
	}
	slices.Sort(ratios)
	if med := ratios[len(ratios)/2]; med > 1.08 {
		t.Errorf("normalized objectives %.3f, median above 1.08", ratios)
	}
	t.Logf("σ %.3g: normalized objectives %.3f", sigma, ratios)
}

func blobSizes(truth []int, k int) []int {
	n := make([]int, k)
	for _, c := range truth {
		n[c]++
	}
	return n
}

// TestObserveCannotChangeTheRelease: the audit hook gets copies, so a hook
// that writes the exact sums over the noisy ones releases the same centres
// as no hook at all (it used to release noiseless centres).
func TestObserveCannotChangeTheRelease(t *testing.T) {
	x, _ := blobs(2000, 3, 4, 3, 5)
	for i := range x.Data {
		x.Data[i] = (x.Data[i] + 11) / 44
	}
	cfg := DPConfig{Epsilon: 1, Delta: 1e-6, Iterations: 5, ClipRadius: 1}
	plain, err := FitDP(ctx, x, 3, cfg, 5, dp.NewTestSource(3), 3)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	cfg.Observe = func(iter int, sums, counts, noisySums, noisyCounts []float64) {
		calls++
		copy(noisySums, sums)
		copy(noisyCounts, counts)
	}
	hooked, err := FitDP(ctx, x, 3, cfg, 5, dp.NewTestSource(3), 3)
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("the hook was never called")
	}
	if !slices.Equal(plain.Centroids.Data, hooked.Centroids.Data) {
		t.Errorf("a hook changed the released centres: %v vs %v", hooked.Centroids.Data[:3], plain.Centroids.Data[:3])
	}
}
