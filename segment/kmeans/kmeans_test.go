package kmeans

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/veil-privacy/veil/segment/kmeans/kmeanstest"
)

var ctx = context.Background()

// blobs returns n points around k centres spread in d dimensions, and the
// true label of each.
func blobs(n, d, k int, spread float64, seed uint64) (*Matrix, []int) {
	data, truth := kmeanstest.Blobs(n, d, k, spread, seed)
	return &Matrix{N: n, D: d, Data: data}, truth
}

// bruteLloyd is plain Lloyd without bounds, the reference.
func bruteLloyd(x, init *Matrix, iters int) (*Matrix, []int32, float64) {
	c := &Matrix{N: init.N, D: init.D, Data: append([]float32(nil), init.Data...)}
	labels := make([]int32, x.N)
	for it := 0; it <= iters; it++ {
		changed := false
		for i := range x.N {
			a, _, _ := nearest2(x.Row(i), c)
			if a != labels[i] || it == 0 {
				changed = changed || a != labels[i]
				labels[i] = a
			}
		}
		if it == iters || (!changed && it > 0) {
			break
		}
		sums := make([]float64, c.N*c.D)
		counts := make([]int, c.N)
		for i := range x.N {
			counts[labels[i]]++
			for j, v := range x.Row(i) {
				sums[int(labels[i])*c.D+j] += float64(v)
			}
		}
		for k := range c.N {
			if counts[k] > 0 {
				for j := range c.D {
					c.Data[k*c.D+j] = float32(sums[k*c.D+j] / float64(counts[k]))
				}
			}
		}
	}
	var inertia float64
	for i := range x.N {
		inertia += SquaredDistance(x.Row(i), c.Row(int(labels[i])))
	}
	return c, labels, inertia
}

// Hamerly's bounds skip work but must not change the result: the same
// labels and inertia as plain Lloyd from the same start.
func TestLloydMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct{ n, d, k int }{{2000, 2, 5}, {3000, 8, 20}, {1500, 32, 64}} {
		x, _ := blobs(tc.n, tc.d, tc.k, 2.5, uint64(tc.k))
		init, _ := kmeansPlusPlus(ctx, x, tc.k, rand.New(rand.NewPCG(1, 2)), 2)
		for _, workers := range []int{1, 3} {
			km := KMeans{K: tc.k, Init: "given", Centroids: init, MaxIter: 100, Workers: workers}
			r, err := km.Fit(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			_, labels, inertia := bruteLloyd(x, init, 100)
			diff := 0
			for i := range labels {
				if labels[i] != r.Labels[i] {
					diff++
				}
			}
			if diff > 0 || math.Abs(r.Inertia-inertia) > 1e-6*inertia {
				t.Errorf("%+v workers %d: %d labels differ, inertia %v vs %v", tc, workers, diff, r.Inertia, inertia)
			}
			if full := int64(r.Iterations+1) * int64(tc.n*tc.k); r.DistanceEvals >= full {
				t.Errorf("%+v: %d distance evaluations, no fewer than brute force (%d)", tc, r.DistanceEvals, full)
			}
		}
	}
}

func TestKMeansFindsBlobs(t *testing.T) {
	x, truth := blobs(5000, 4, 6, 0.5, 3)
	for _, init := range []string{"k-means++", "k-means||"} {
		km := KMeans{K: 6, Init: init, Seed: 7, NInit: 3}
		r, err := km.Fit(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		// Every true blob maps to one cluster.
		pure := 0
		for c := range 6 {
			counts := map[int32]int{}
			total := 0
			for i, l := range truth {
				if l == c {
					counts[r.Labels[i]]++
					total++
				}
			}
			for _, n := range counts {
				if n == total {
					pure++
				}
			}
		}
		if pure < 5 || !r.Converged {
			t.Errorf("%s: %d of 6 blobs recovered whole, converged %v", init, pure, r.Converged)
		}
	}
}

func TestKMeansDeterministic(t *testing.T) {
	x, _ := blobs(3000, 5, 8, 2, 4)
	km := KMeans{K: 8, Seed: 11, Workers: 2}
	a, _ := km.Fit(ctx, x)
	b, _ := km.Fit(ctx, x)
	if a.Inertia != b.Inertia {
		t.Fatalf("same seed, inertia %v vs %v", a.Inertia, b.Inertia)
	}
}

func TestEmptyClusterRepair(t *testing.T) {
	// Two far groups and three centres started in one of them, one of
	// which sits far from every point: its cluster starts empty.
	x := NewMatrix(6, 1)
	copy(x.Data, []float32{0, 0.1, 0.2, 10, 10.1, 10.2})
	init := &Matrix{N: 3, D: 1, Data: []float32{0, 0.1, 1000}}
	r, err := (&KMeans{K: 3, Init: "given", Centroids: init}).Fit(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	for j, s := range r.Sizes {
		if s == 0 {
			t.Errorf("cluster %d is empty: sizes %v", j, r.Sizes)
		}
	}
}

func TestKMeansBadInput(t *testing.T) {
	x, _ := blobs(10, 2, 2, 1, 1)
	nan := &Matrix{N: 2, D: 1, Data: []float32{1, float32(math.NaN())}}
	for name, tc := range map[string]struct {
		km KMeans
		x  *Matrix
	}{
		"k zero":       {KMeans{K: 0}, x},
		"k too large":  {KMeans{K: 11}, x},
		"NaN":          {KMeans{K: 1}, nan},
		"bad init":     {KMeans{K: 2, Init: "random"}, x},
		"bad given":    {KMeans{K: 2, Init: "given", Centroids: NewMatrix(3, 2)}, x},
		"negative tol": {KMeans{K: 2, Tol: -1}, x},
		"empty":        {KMeans{K: 1}, &Matrix{}},
	} {
		if _, err := tc.km.Fit(ctx, tc.x); !errors.Is(err, ErrConfig) && !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkLloyd(b *testing.B) {
	x, _ := blobs(200000, 32, 64, 2.5, 5)
	init, _ := kmeansPlusPlus(ctx, x, 64, rand.New(rand.NewPCG(1, 2)), 2)
	b.ResetTimer()
	var r *Result
	for b.Loop() {
		r, _ = (&KMeans{K: 64, Init: "given", Centroids: init, MaxIter: 20}).Fit(ctx, x)
	}
	b.ReportMetric(r.Inertia, "inertia")
	b.ReportMetric(float64(r.Iterations), "iterations")
	b.ReportMetric(float64(r.DistanceEvals)/float64(int64(r.Iterations+1)*200000*64), "evals/brute")
}
