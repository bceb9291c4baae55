package kmeans

import (
	"math"
	"math/rand/v2"
)

// Silhouette returns the mean silhouette coefficient of a labelling on a
// uniform sample of at most sample points (Rousseeuw 1987): for each point,
// (b - a) / max(a, b), with a the mean distance to its own cluster and b the
// smallest mean distance to another cluster, both over the sample.
func Silhouette(x *Matrix, labels []int32, k, sample int, seed uint64) float64 {
	n := x.N
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if n > sample {
		r := rand.New(rand.NewPCG(seed, 0x5111))
		r.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:sample]
	}
	var total float64
	counted := 0
	sums := make([]float64, k)
	cnt := make([]int, k)
	for _, i := range idx {
		clear(sums)
		clear(cnt)
		for _, j := range idx {
			if i == j {
				continue
			}
			sums[labels[j]] += math.Sqrt(SquaredDistance(x.Row(i), x.Row(j)))
			cnt[labels[j]]++
		}
		own := labels[i]
		if cnt[own] == 0 {
			continue // a singleton cluster scores 0
		}
		a := sums[own] / float64(cnt[own])
		b := math.Inf(1)
		for c := range k {
			if int32(c) != own && cnt[c] > 0 {
				b = math.Min(b, sums[c]/float64(cnt[c]))
			}
		}
		if math.IsInf(b, 1) {
			continue
		}
		total += (b - a) / math.Max(a, b)
		counted++
	}
	if counted == 0 {
		return 0
	}
	return total / float64(counted)
}
