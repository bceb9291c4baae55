// Package kmeanstest provides data for tests and benchmarks of clustering:
// points drawn around random centres, reproducible from a seed.
package kmeanstest

import "math/rand/v2"

// Blobs returns n points (row-major, d values each) drawn around k centres
// uniform in [-10, 10]^d with normal noise of standard deviation spread,
// and the true centre of each point. The same arguments give the same
// points.
func Blobs(n, d, k int, spread float64, seed uint64) (data []float32, truth []int) {
	r := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float64, k)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range centres[c] {
			centres[c][j] = r.Float64()*20 - 10
		}
	}
	data = make([]float32, n*d)
	truth = make([]int, n)
	for i := range n {
		c := r.IntN(k)
		truth[i] = c
		for j := range d {
			data[i*d+j] = float32(centres[c][j] + spread*r.NormFloat64())
		}
	}
	return data, truth
}
