//go:build amd64

package kmeans

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// TestLloydPinned pins Fit's results bit for bit: the SHA-256 of the
// centres, labels, distances, sizes, inertia, iterations, convergence and
// distance evaluations of five fits (k-means++ and k-means||, one to four
// workers, restarts, a tolerance, an iteration cap, many clusters),
// recorded before lloyd was cut into steps. A change of the arithmetic or
// of its order changes the digest. The digest is of the AVX2 kernels;
// the generic ones round differently.
func TestLloydPinned(t *testing.T) {
	if !haveAVX2 {
		t.Skip("the digest is of the AVX2 kernels")
	}
	const want = "e602ccba5959daaa40e95ad24663e9da0d207e0beda1e3c0707925ab08fc992d"
	h := sha256.New()
	put := func(v any) { binary.Write(h, binary.LittleEndian, v) }
	cases := []KMeans{
		{K: 5, Seed: 1, Workers: 1},
		{K: 5, Seed: 1, Workers: 3, NInit: 2},
		{K: 7, Seed: 2, Workers: 2, Init: "k-means||", Tol: 1e-4},
		{K: 12, Seed: 3, Workers: 4, MaxIter: 5},
		{K: 40, Seed: 4, Workers: 2},
	}
	for i, c := range cases {
		x, _ := blobs(3001+i*517, 3+2*i, 6, 1.5, uint64(10+i))
		r, err := c.Fit(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		put(r.Centroids.Data)
		put(r.Labels)
		put(r.Dist)
		for _, s := range r.Sizes {
			put(int64(s))
		}
		put(math.Float64bits(r.Inertia))
		put(int64(r.Iterations))
		put(r.Converged)
		put(r.DistanceEvals)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Errorf("digest of the fits %s, want %s", got, want)
	}
}
