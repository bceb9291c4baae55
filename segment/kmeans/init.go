package kmeans

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
)

// kmeansPlusPlus is greedy k-means++ (Arthur and Vassilvitskii 2007, with
// scikit-learn's 2 + ln k local trials): each new centre is the best of
// several candidates drawn with probability proportional to the squared
// distance to the nearest centre so far.
func kmeansPlusPlus(ctx context.Context, x *Matrix, k int, rng *rand.Rand, workers int) (*Matrix, error) {
	return weightedPlusPlus(ctx, x, nil, k, rng, workers)
}

// weightedPlusPlus is k-means++ over points with weights (nil: all 1).
func weightedPlusPlus(ctx context.Context, x *Matrix, weight []float64, k int, rng *rand.Rand, workers int) (*Matrix, error) {
	n := x.N
	w := func(i int) float64 {
		if weight == nil {
			return 1
		}
		return weight[i]
	}
	centres := NewMatrix(k, x.D)
	trials := 2 + int(math.Log(float64(k)))
	first := sampleIndex(rng, n, w)
	copy(centres.Row(0), x.Row(first))
	closest := make([]float64, n)
	parallel(n, workers, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			closest[i] = float64(sqDist(x.Row(i), centres.Row(0)))
		}
	})
	cand := make([][]float64, trials)
	for t := range cand {
		cand[t] = make([]float64, n)
	}
	for c := 1; c < k; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var total float64
		for i, v := range closest {
			total += v * w(i)
		}
		best, bestPot := -1, math.Inf(1)
		for t := range trials {
			var idx int
			if total <= 0 {
				idx = rng.IntN(n) // all points coincide with centres
			} else {
				idx = sampleIndex(rng, n, func(i int) float64 { return closest[i] * w(i) })
			}
			row := x.Row(idx)
			pots := make([]float64, workers)
			parallel(n, workers, func(wk, lo, hi int) {
				for i := lo; i < hi; i++ {
					v := math.Min(closest[i], float64(sqDist(x.Row(i), row)))
					cand[t][i] = v
					pots[wk] += v * w(i)
				}
			})
			var pot float64
			for _, p := range pots {
				pot += p
			}
			if pot < bestPot {
				best, bestPot = t, pot
				copy(centres.Row(c), row)
			}
		}
		copy(closest, cand[best])
	}
	return centres, nil
}

// sampleIndex draws i with probability weight(i) / Σ weight.
func sampleIndex(rng *rand.Rand, n int, weight func(int) float64) int {
	var total float64
	for i := range n {
		total += weight(i)
	}
	u := rng.Float64() * total
	for i := range n {
		u -= weight(i)
		if u < 0 {
			return i
		}
	}
	return n - 1
}

// kmeansParallelInit is k-means|| (Bahmani et al. 2012): five rounds that
// each add about 2k points drawn with probability proportional to their
// squared distance, then weighted k-means++ over the candidates, weighted by
// how many points are closest to each. It needs few passes over the data.
func kmeansParallelInit(ctx context.Context, x *Matrix, k int, rng *rand.Rand, workers int) (*Matrix, error) {
	n := x.N
	l := 2 * float64(k)
	picked := []int{rng.IntN(n)}
	closest := make([]float64, n)
	for i := range closest {
		closest[i] = math.Inf(1)
	}
	update := func(from int) {
		parallel(n, workers, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				for _, p := range picked[from:] {
					closest[i] = math.Min(closest[i], float64(sqDist(x.Row(i), x.Row(p))))
				}
			}
		})
	}
	update(0)
	for range 5 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var phi float64
		for _, v := range closest {
			phi += v
		}
		if phi == 0 {
			break
		}
		from := len(picked)
		for i, v := range closest {
			if rng.Float64() < l*v/phi {
				picked = append(picked, i)
			}
		}
		update(from)
	}
	sort.Ints(picked)
	uniq := picked[:0]
	for i, p := range picked {
		if i == 0 || p != picked[i-1] {
			uniq = append(uniq, p)
		}
	}
	picked = uniq
	if len(picked) < k {
		// Too few candidates (tiny or degenerate data): plain k-means++.
		return kmeansPlusPlus(ctx, x, k, rng, workers)
	}
	cand := NewMatrix(len(picked), x.D)
	for c, p := range picked {
		copy(cand.Row(c), x.Row(p))
	}
	weight := make([]float64, len(picked))
	for i := range n {
		a, _, _ := nearest2(x.Row(i), cand)
		weight[a]++
	}
	return weightedPlusPlus(ctx, cand, weight, k, rng, workers)
}
