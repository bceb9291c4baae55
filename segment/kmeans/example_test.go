package kmeans_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// Six points in two groups, one row per point.
func twoGroups() *kmeans.Matrix {
	return &kmeans.Matrix{N: 6, D: 2, Data: []float32{
		0, 0,
		0, 1,
		1, 0,
		9, 9,
		9, 10,
		10, 9,
	}}
}

func ExampleKMeans_Fit() {
	x := twoGroups()
	km := kmeans.KMeans{K: 2, Seed: 1, Workers: 1}
	r, err := km.Fit(context.Background(), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	for c := range r.Centroids.N {
		fmt.Printf("centre %.2f, %d points\n", r.Centroids.Row(c), r.Sizes[c])
	}
	fmt.Println("labels", r.Labels)
	fmt.Printf("inertia %.3f, converged %v\n", r.Inertia, r.Converged)
	// Output:
	// centre [0.33 0.33], 3 points
	// centre [9.33 9.33], 3 points
	// labels [0 0 0 1 1 1]
	// inertia 2.667, converged true
}

func ExampleSilhouette() {
	x := twoGroups()
	labels := []int32{0, 0, 0, 1, 1, 1}
	// A sample as large as the data: every point counts.
	fmt.Printf("two groups: %.3f\n", kmeans.Silhouette(x, labels, 2, x.N, 1))
	mixed := []int32{0, 1, 0, 1, 0, 1}
	fmt.Printf("mixed:      %.3f\n", kmeans.Silhouette(x, mixed, 2, x.N, 1))
	// Output:
	// two groups: 0.911
	// mixed:      -0.051
}

// FitDP releases its centres under (ε, δ)-DP. In a job the noise comes
// from dp.NewSecureSource; a seeded source makes the example repeatable.
func ExampleFitDP() {
	// 3000 subjects in two groups, features in [0, 1]^2.
	r := rand.New(rand.NewPCG(1, 2))
	x := kmeans.NewMatrix(3000, 2)
	for i := range x.N {
		centre := float32(0.2)
		if i%2 == 1 {
			centre = 0.8
		}
		for j := range x.D {
			x.Row(i)[j] = centre + float32(0.05*r.NormFloat64())
		}
	}
	cfg := kmeans.DPConfig{Epsilon: 4, Delta: 1e-6, Iterations: 5, ClipRadius: 1.5, Accountant: "rdp"}
	sigma, _, spent, err := cfg.Plan()
	if err != nil {
		fmt.Println(err)
		return
	}
	kmeans.ClipRows(x, cfg.ClipRadius)
	res, err := kmeans.FitDP(context.Background(), x, 2, cfg, sigma, dp.NewTestSource(7), 7)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("spent ε ≤ %v: %v\n", cfg.Epsilon, spent.Epsilon <= cfg.Epsilon)
	fmt.Printf("%d centres of %d dimensions\n", res.Centroids.N, res.Centroids.D)
	for c := range res.Centroids.N {
		fmt.Printf("centre %.1f\n", res.Centroids.Row(c))
	}
	// Output:
	// spent ε ≤ 4: true
	// 2 centres of 2 dimensions
	// centre [0.2 0.2]
	// centre [0.8 0.8]
}

// pieces is a Source over a matrix held in memory, rows pieces at a time.
type pieces struct {
	x    *kmeans.Matrix
	rows int
}

func (p pieces) Pieces() int { return (p.x.N + p.rows - 1) / p.rows }
func (p pieces) Dims() int   { return p.x.D }

func (p pieces) Read(_ context.Context, i int, _ *kmeans.Matrix) (*kmeans.Matrix, error) {
	lo, hi := i*p.rows, min((i+1)*p.rows, p.x.N)
	return &kmeans.Matrix{N: hi - lo, D: p.x.D, Data: p.x.Data[lo*p.x.D : hi*p.x.D]}, nil
}

// FitStream reads its data piece by piece (in veil, row groups of a
// Parquet file): here the six points in two pieces of three.
func ExampleMiniBatch_FitStream() {
	x := twoGroups()
	// Each piece holds points of both groups: k-means++ seeds the
	// centres on the first piece.
	order := []int{0, 3, 1, 4, 2, 5}
	mixed := kmeans.NewMatrix(x.N, x.D)
	for i, o := range order {
		copy(mixed.Row(i), x.Row(o))
	}
	mb := kmeans.MiniBatch{K: 2, BatchSize: 2, Epochs: 20, Seed: 1}
	r, err := mb.FitStream(context.Background(), pieces{x: mixed, rows: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for c := range r.Centroids.N {
		fmt.Printf("centre %.1f, %d points\n", r.Centroids.Row(c), r.Sizes[c])
	}
	// Output:
	// centre [0.3 0.3], 3 points
	// centre [9.3 9.3], 3 points
}
