package kmeans

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// KMeans configures k-means. The zero value of each field but K has a
// meaning; see DefaultKMeans.
type KMeans struct {
	K       int     // number of clusters
	MaxIter int     // Lloyd iterations per run (0: 300)
	Tol     float64 // stop when the total squared centre shift is at most Tol × the mean feature variance (sklearn's rule); 0: only on no change
	NInit   int     // runs from different seeds, the best kept (0: 1)
	Seed    uint64
	Workers int    // goroutines (0: GOMAXPROCS)
	Init    string // "k-means++" (default), "k-means||" or "given"
	// Centroids are the initial centres when Init is "given" (K×D).
	Centroids *Matrix
}

// Result is a fitted clustering.
type Result struct {
	Centroids  *Matrix
	Labels     []int32
	Dist       []float32 // distance of each point to its centre
	Sizes      []int
	Inertia    float64 // sum of squared distances, in float64
	Iterations int
	Converged  bool
	// DistanceEvals counts point-centre distances computed by Lloyd
	// iterations; N×K per iteration without bounds.
	DistanceEvals int64
	Duration      time.Duration
}

func (c *KMeans) defaults(x *Matrix) (KMeans, error) {
	k := *c
	if k.MaxIter == 0 {
		k.MaxIter = 300
	}
	if k.NInit == 0 {
		k.NInit = 1
	}
	if k.Workers <= 0 {
		k.Workers = runtime.GOMAXPROCS(0)
	}
	if k.Init == "" {
		k.Init = "k-means++"
	}
	switch {
	case k.K < 1:
		return k, fmt.Errorf("%w: k = %d must be at least 1", ErrConfig, k.K)
	case k.K > x.N:
		return k, fmt.Errorf("%w: k = %d is larger than the %d points", ErrConfig, k.K, x.N)
	case k.MaxIter < 1 || k.NInit < 1:
		return k, fmt.Errorf("%w: max iterations and restarts must be at least 1", ErrConfig)
	case !(k.Tol >= 0) || math.IsInf(k.Tol, 0):
		return k, fmt.Errorf("%w: tolerance %v must be a finite non-negative number", ErrConfig, k.Tol)
	}
	switch k.Init {
	case "k-means++", "k-means||":
	case "given":
		if k.Centroids == nil || k.Centroids.N != k.K || k.Centroids.D != x.D {
			return k, fmt.Errorf("%w: given centroids must be %d×%d", ErrConfig, k.K, x.D)
		}
		if err := k.Centroids.Check(); err != nil {
			return k, err
		}
		k.NInit = 1
	default:
		return k, fmt.Errorf("%w: init %q (want k-means++, k-means|| or given)", ErrConfig, k.Init)
	}
	return k, nil
}

// Fit clusters the rows of x. It is deterministic for a seed and a number of
// workers.
func (c *KMeans) Fit(ctx context.Context, x *Matrix) (*Result, error) {
	if err := x.checkParallel(max(1, c.Workers)); err != nil {
		return nil, err
	}
	cfg, err := c.defaults(x)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var tol float64
	if cfg.Tol > 0 {
		tol = cfg.Tol * meanVariance(x)
	}
	var best *Result
	for run := range cfg.NInit {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(run)))
		var centres *Matrix
		switch cfg.Init {
		case "given":
			centres = &Matrix{N: cfg.K, D: x.D, Data: append([]float32(nil), cfg.Centroids.Data...)}
		case "k-means||":
			centres, err = kmeansParallelInit(ctx, x, cfg.K, rng, cfg.Workers)
		default:
			centres, err = kmeansPlusPlus(ctx, x, cfg.K, rng, cfg.Workers)
		}
		if err != nil {
			return nil, err
		}
		r, err := lloyd(ctx, x, centres, cfg.MaxIter, tol, cfg.Workers)
		if err != nil {
			return nil, err
		}
		if best == nil || r.Inertia < best.Inertia {
			best = r
		}
	}
	best.Duration = time.Since(start)
	return best, nil
}

// meanVariance is the mean over features of their variance, read row by
// row.
func meanVariance(x *Matrix) float64 {
	s := make([]float64, x.D)
	s2 := make([]float64, x.D)
	for i := range x.N {
		for j, v := range x.Row(i) {
			f := float64(v)
			s[j] += f
			s2[j] += f * f
		}
	}
	var total float64
	for j := range x.D {
		m := s[j] / float64(x.N)
		total += s2[j]/float64(x.N) - m*m
	}
	return total / float64(x.D)
}

// chunks splits [0, n) into at most w contiguous ranges.
func chunks(n, w int) [][2]int {
	w = max(1, min(w, n))
	out := make([][2]int, 0, w)
	for i := range w {
		out = append(out, [2]int{i * n / w, (i + 1) * n / w})
	}
	return out
}

// parallel runs fn over the chunks of [0, n) on w goroutines.
func parallel(n, w int, fn func(worker, lo, hi int)) {
	var wg sync.WaitGroup
	for i, c := range chunks(n, w) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, c[0], c[1])
		}()
	}
	wg.Wait()
}

// parallelChunks runs fn over nchunks chunks of [0, n) on workers
// goroutines, which take chunks in turn; fn gets the worker and the chunk.
func parallelChunks(n, nchunks, workers int, fn func(worker, chunk, lo, hi int)) {
	cs := chunks(n, nchunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range max(1, min(workers, len(cs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= len(cs) {
					return
				}
				fn(w, c, cs[c][0], cs[c][1])
			}
		}()
	}
	wg.Wait()
}

// lloyd runs exact Lloyd iterations from the given centres, skipping
// distance computations with Hamerly's bounds (Hamerly 2010): for each point
// an upper bound on the distance to its centre and a lower bound on the
// distance to every other centre; a point whose upper bound is below both
// its lower bound and half the distance from its centre to the nearest other
// centre cannot change cluster. Sums are kept in float64 and updated by the
// points that move.
func lloyd(ctx context.Context, x *Matrix, centres *Matrix, maxIter int, tol float64, workers int) (*Result, error) {
	n, d, k := x.N, x.D, centres.N
	labels := make([]int32, n)
	upper := make([]float32, n)
	lower := make([]float32, n)
	sums := make([]float64, k*d)
	counts := make([]int, k)
	half := make([]float32, k)  // half the distance to the nearest other centre
	moved := make([]float32, k) // how far each centre moved in the last update
	old := NewMatrix(k, d)
	var evals int64
	// Squared norms of the points, and the centres in the layout of the
	// distance kernel, refreshed each iteration.
	norms := make([]float32, n)
	parallel(n, workers, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			var s float32
			for _, v := range x.Row(i) {
				s += v * v
			}
			norms[i] = s
		}
	})
	blk := newCentreBlock(k, d)
	blk.load(centres)
	scratch := make([][]float32, workers)
	for w := range scratch {
		scratch[w] = make([]float32, 2*blk.kp)
	}

	type local struct {
		delta  []float64 // sum changes
		counts []int
		evals  int64
		change int
	}
	// Work is cut into more chunks than workers, taken in turn, so that
	// a worker that finishes early helps; sums are kept per chunk and merged
	// in chunk order, so results do not depend on which worker took what.
	nchunks := min(n, 8*workers)
	locals := make([]local, nchunks)
	for w := range locals {
		locals[w] = local{delta: make([]float64, k*d), counts: make([]int, k)}
	}

	// First assignment: every distance.
	parallelChunks(n, nchunks, workers, func(w, c, lo, hi int) {
		l := &locals[c]
		set := func(i int, a int32, d1, d2 float32) {
			labels[i], upper[i], lower[i] = a, d1, d2
			l.evals += int64(k)
			l.counts[a]++
			for j, v := range x.Row(i) {
				l.delta[int(a)*d+j] += float64(v)
			}
		}
		i := lo
		for ; i+1 < hi; i += 2 {
			a1, d11, d12, a2, d21, d22 := blk.nearest2Pair(x.Row(i), x.Row(i+1), norms[i], norms[i+1], scratch[w])
			set(i, a1, d11, d12)
			set(i+1, a2, d21, d22)
		}
		if i < hi {
			a, d1, d2 := blk.nearest2(x.Row(i), norms[i], scratch[w])
			set(i, a, d1, d2)
		}
	})
	merge := func() (changes int) {
		for w := range locals {
			l := &locals[w]
			for j, v := range l.delta {
				sums[j] += v
				l.delta[j] = 0
			}
			for j, v := range l.counts {
				counts[j] += v
				l.counts[j] = 0
			}
			evals += l.evals
			changes += l.change
			l.evals, l.change = 0, 0
		}
		return changes
	}
	merge()
	iter, converged := 0, false
	for iter < maxIter {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		iter++
		// Update the centres from the sums; repair empty clusters.
		copy(old.Data, centres.Data)
		if repairEmpty(x, centres, labels, upper, sums, counts) {
			// A point moved by force: its bounds and those of all others
			// are reset by a full pass below.
			for i := range lower {
				lower[i] = 0
			}
		}
		var shift float64
		for j := range k {
			if counts[j] == 0 {
				continue
			}
			row := centres.Row(j)
			inv := 1 / float64(counts[j])
			for t := range d {
				row[t] = float32(sums[j*d+t] * inv)
			}
			m := SquaredDistance(old.Row(j), row)
			shift += m
			moved[j] = float32(math.Sqrt(m))
		}
		if iter > 1 && tol > 0 && shift <= tol {
			converged = true
			break
		}
		// Bounds follow the centres.
		var maxMove, secondMove float32
		maxAt := -1
		for j, m := range moved {
			if m > maxMove {
				secondMove, maxMove, maxAt = maxMove, m, j
			} else if m > secondMove {
				secondMove = m
			}
		}
		blk.load(centres)
		for j := range k {
			best := float32(math.Inf(1))
			for o := range k {
				if o != j {
					best = min(best, float32(math.Sqrt(float64(sqDist(centres.Row(j), centres.Row(o))))))
				}
			}
			half[j] = best / 2
		}
		parallelChunks(n, nchunks, workers, func(w, c, lo, hi int) {
			l := &locals[c]
			// Points whose bounds do not settle them are evaluated in
			// pairs, which share the loads of the centres.
			update := func(i int, b int32, d1, d2 float32) {
				l.evals += int64(k)
				upper[i], lower[i] = d1, d2
				if a := labels[i]; b != a {
					labels[i] = b
					l.change++
					l.counts[a]--
					l.counts[b]++
					for t, v := range x.Row(i) {
						l.delta[int(a)*d+t] -= float64(v)
						l.delta[int(b)*d+t] += float64(v)
					}
				}
			}
			pending := -1
			for i := lo; i < hi; i++ {
				a := labels[i]
				upper[i] += moved[a]
				if int(a) == maxAt {
					lower[i] -= secondMove
				} else {
					lower[i] -= maxMove
				}
				bound := max(half[a], lower[i])
				if upper[i] <= bound {
					continue
				}
				row := x.Row(i)
				upper[i] = float32(math.Sqrt(float64(sqDistFast(row, centres.Row(int(a))))))
				l.evals++
				if upper[i] <= bound {
					continue
				}
				if pending < 0 {
					pending = i
					continue
				}
				b1, d11, d12, b2, d21, d22 := blk.nearest2Pair(x.Row(pending), row, norms[pending], norms[i], scratch[w])
				update(pending, b1, d11, d12)
				update(i, b2, d21, d22)
				pending = -1
			}
			if pending >= 0 {
				b, d1, d2 := blk.nearest2(x.Row(pending), norms[pending], scratch[w])
				update(pending, b, d1, d2)
			}
		})
		for j := range moved {
			moved[j] = 0
		}
		if merge() == 0 {
			converged = true
			break
		}
	}
	// Final centres are the means of the final assignment.
	for j := range k {
		if counts[j] == 0 {
			continue
		}
		row := centres.Row(j)
		inv := 1 / float64(counts[j])
		for t := range d {
			row[t] = float32(sums[j*d+t] * inv)
		}
	}
	r := &Result{Centroids: centres, Labels: labels, Dist: upper, Sizes: counts, Iterations: iter, Converged: converged, DistanceEvals: evals}
	// Exact distances and the objective, in float64.
	partial := make([]float64, workers)
	parallel(n, workers, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			s := SquaredDistance(x.Row(i), centres.Row(int(labels[i])))
			upper[i] = float32(math.Sqrt(s))
			partial[w] += s
		}
	})
	for _, p := range partial {
		r.Inertia += p
	}
	return r, nil
}

// nearest2 returns the nearest centre to row and the distances to the
// nearest and the second nearest.
func nearest2(row []float32, centres *Matrix) (int32, float32, float32) {
	best, second := float32(math.Inf(1)), float32(math.Inf(1))
	var a int32
	for j := range centres.N {
		s := sqDist(row, centres.Row(j))
		if s < best {
			second, best, a = best, s, int32(j)
		} else if s < second {
			second = s
		}
	}
	return a, float32(math.Sqrt(float64(best))), float32(math.Sqrt(float64(second)))
}

// repairEmpty gives every empty cluster the point farthest from its centre
// (as scikit-learn does), moving it out of its old cluster. It reports
// whether anything moved.
func repairEmpty(x, centres *Matrix, labels []int32, dist []float32, sums []float64, counts []int) bool {
	repaired := false
	for j := range centres.N {
		if counts[j] > 0 {
			continue
		}
		far, farD := -1, float32(-1)
		for i, dd := range dist {
			if counts[labels[i]] > 1 && dd > farD {
				far, farD = i, dd
			}
		}
		if far < 0 {
			continue
		}
		a := labels[far]
		row := x.Row(far)
		for t, v := range row {
			sums[int(a)*x.D+t] -= float64(v)
			sums[j*x.D+t] += float64(v)
		}
		counts[a]--
		counts[j]++
		labels[far] = int32(j)
		dist[far] = 0
		repaired = true
	}
	return repaired
}
