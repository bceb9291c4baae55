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
	s := newLloydState(x, centres, workers)
	s.assignAll()
	s.merge()
	iter, converged := 0, false
	for iter < maxIter {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		iter++
		if shift := s.updateCentres(); iter > 1 && tol > 0 && shift <= tol {
			converged = true
			break
		}
		s.followCentres()
		s.reassign()
		if s.merge() == 0 {
			converged = true
			break
		}
	}
	// Final centres are the means of the final assignment.
	for j := range s.k {
		s.setMean(j)
	}
	return s.result(iter, converged), nil
}

// lloydState is the state of lloyd's iterations. The per-point slices are
// indexed by row of x; sums (k×d, float64) and counts are those of the
// current assignment once merged.
type lloydState struct {
	x, centres *Matrix
	n, d, k    int
	workers    int
	labels     []int32
	upper      []float32 // upper bound on the distance to the own centre
	lower      []float32 // lower bound on the distance to every other centre
	norms      []float32 // squared norms of the points
	sums       []float64
	counts     []int
	half       []float32 // half the distance to the nearest other centre
	moved      []float32 // how far each centre moved in the last update
	old        *Matrix   // the centres before the last update
	// maxMove and secondMove are the two largest moves of the last
	// update, maxAt the centre that made the largest (-1: none moved).
	maxMove, secondMove float32
	maxAt               int
	evals               int64
	// blk holds the centres in the layout of the distance kernel,
	// scratch[w] is worker w's buffer for it.
	blk     *centreBlock
	scratch [][]float32
	// Work is cut into more chunks than workers, taken in turn, so that
	// a worker that finishes early helps; sums are kept per chunk and
	// merged in chunk order, so results do not depend on which worker
	// took what.
	nchunks int
	chunks  []chunkSums
}

// chunkSums is what one chunk of points changed in an assignment pass.
type chunkSums struct {
	delta  []float64 // sum changes
	counts []int
	evals  int64
	change int
}

// newLloydState allocates the state of lloyd from the initial centres,
// which it updates in place.
func newLloydState(x, centres *Matrix, workers int) *lloydState {
	n, d, k := x.N, x.D, centres.N
	s := &lloydState{
		x: x, centres: centres, n: n, d: d, k: k, workers: workers,
		labels: make([]int32, n),
		upper:  make([]float32, n),
		lower:  make([]float32, n),
		norms:  make([]float32, n),
		sums:   make([]float64, k*d),
		counts: make([]int, k),
		half:   make([]float32, k),
		moved:  make([]float32, k),
		old:    NewMatrix(k, d),
	}
	parallel(n, workers, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			var sq float32
			for _, v := range x.Row(i) {
				sq += v * v
			}
			s.norms[i] = sq
		}
	})
	s.blk = newCentreBlock(k, d)
	s.blk.load(centres)
	s.scratch = make([][]float32, workers)
	for w := range s.scratch {
		s.scratch[w] = make([]float32, 2*s.blk.kp)
	}
	s.nchunks = min(n, 8*workers)
	s.chunks = make([]chunkSums, s.nchunks)
	for c := range s.chunks {
		s.chunks[c] = chunkSums{delta: make([]float64, k*d), counts: make([]int, k)}
	}
	return s
}

// assignAll gives every point its nearest centre, computing every
// distance: the first assignment, which also sets the bounds.
func (s *lloydState) assignAll() {
	parallelChunks(s.n, s.nchunks, s.workers, func(w, c, lo, hi int) {
		l := &s.chunks[c]
		i := lo
		for ; i+1 < hi; i += 2 {
			a1, d11, d12, a2, d21, d22 := s.blk.nearest2Pair(s.x.Row(i), s.x.Row(i+1), s.norms[i], s.norms[i+1], s.scratch[w])
			s.place(l, i, a1, d11, d12)
			s.place(l, i+1, a2, d21, d22)
		}
		if i < hi {
			a, d1, d2 := s.blk.nearest2(s.x.Row(i), s.norms[i], s.scratch[w])
			s.place(l, i, a, d1, d2)
		}
	})
}

// place puts point i, not yet in any cluster, into cluster a at distance
// d1, the second nearest centre at d2.
func (s *lloydState) place(l *chunkSums, i int, a int32, d1, d2 float32) {
	s.labels[i], s.upper[i], s.lower[i] = a, d1, d2
	l.evals += int64(s.k)
	l.counts[a]++
	for j, v := range s.x.Row(i) {
		l.delta[int(a)*s.d+j] += float64(v)
	}
}

// merge adds the chunks' changes to the sums and counts, in chunk order,
// clears them, and returns how many points changed cluster.
func (s *lloydState) merge() (changes int) {
	for c := range s.chunks {
		l := &s.chunks[c]
		for j, v := range l.delta {
			s.sums[j] += v
			l.delta[j] = 0
		}
		for j, v := range l.counts {
			s.counts[j] += v
			l.counts[j] = 0
		}
		s.evals += l.evals
		changes += l.change
		l.evals, l.change = 0, 0
	}
	return changes
}

// updateCentres moves every non-empty centre to the mean of its points,
// after giving empty clusters a point (repairEmpty), and returns the total
// squared shift of the centres; moved holds each centre's shift.
func (s *lloydState) updateCentres() (shift float64) {
	clear(s.moved)
	copy(s.old.Data, s.centres.Data)
	if repairEmpty(s.x, s.centres, s.labels, s.upper, s.sums, s.counts) {
		// A point moved by force: its bounds and those of all others
		// are reset by a full pass below.
		clear(s.lower)
	}
	for j := range s.k {
		if !s.setMean(j) {
			continue
		}
		m := SquaredDistance(s.old.Row(j), s.centres.Row(j))
		shift += m
		s.moved[j] = float32(math.Sqrt(m))
	}
	return shift
}

// setMean sets centre j to the mean of its cluster from the sums, unless
// the cluster is empty; it reports whether it did.
func (s *lloydState) setMean(j int) bool {
	if s.counts[j] == 0 {
		return false
	}
	row := s.centres.Row(j)
	inv := 1 / float64(s.counts[j])
	for t := range s.d {
		row[t] = float32(s.sums[j*s.d+t] * inv)
	}
	return true
}

// followCentres prepares the bounds' update for the centres' moves: the
// two largest moves, the centres in the kernel's layout, and half the
// distance from each centre to the nearest other.
func (s *lloydState) followCentres() {
	s.maxMove, s.secondMove, s.maxAt = 0, 0, -1
	for j, m := range s.moved {
		if m > s.maxMove {
			s.secondMove, s.maxMove, s.maxAt = s.maxMove, m, j
		} else if m > s.secondMove {
			s.secondMove = m
		}
	}
	s.blk.load(s.centres)
	for j := range s.k {
		best := float32(math.Inf(1))
		for o := range s.k {
			if o != j {
				best = min(best, float32(math.Sqrt(float64(sqDist(s.centres.Row(j), s.centres.Row(o))))))
			}
		}
		s.half[j] = best / 2
	}
}

// reassign moves every point whose bounds do not settle it to its nearest
// centre. Unsettled points are evaluated in pairs, which share the loads
// of the centres.
func (s *lloydState) reassign() {
	parallelChunks(s.n, s.nchunks, s.workers, func(w, c, lo, hi int) {
		l := &s.chunks[c]
		pending := -1
		for i := lo; i < hi; i++ {
			if s.settled(l, i) {
				continue
			}
			if pending < 0 {
				pending = i
				continue
			}
			b1, d11, d12, b2, d21, d22 := s.blk.nearest2Pair(s.x.Row(pending), s.x.Row(i), s.norms[pending], s.norms[i], s.scratch[w])
			s.move(l, pending, b1, d11, d12)
			s.move(l, i, b2, d21, d22)
			pending = -1
		}
		if pending >= 0 {
			b, d1, d2 := s.blk.nearest2(s.x.Row(pending), s.norms[pending], s.scratch[w])
			s.move(l, pending, b, d1, d2)
		}
	})
}

// settled updates point i's bounds for the centres' moves and reports
// whether they show that i keeps its cluster, tightening the upper bound
// to the exact distance to its centre when they alone do not.
func (s *lloydState) settled(l *chunkSums, i int) bool {
	a := s.labels[i]
	s.upper[i] += s.moved[a]
	if int(a) == s.maxAt {
		s.lower[i] -= s.secondMove
	} else {
		s.lower[i] -= s.maxMove
	}
	bound := max(s.half[a], s.lower[i])
	if s.upper[i] <= bound {
		return true
	}
	s.upper[i] = float32(math.Sqrt(float64(sqDistFast(s.x.Row(i), s.centres.Row(int(a))))))
	l.evals++
	return s.upper[i] <= bound
}

// move puts point i into cluster b at distance d1, the second nearest
// centre at d2, moving its coordinates between the clusters' sums when b
// is not its cluster.
func (s *lloydState) move(l *chunkSums, i int, b int32, d1, d2 float32) {
	l.evals += int64(s.k)
	s.upper[i], s.lower[i] = d1, d2
	a := s.labels[i]
	if b == a {
		return
	}
	s.labels[i] = b
	l.change++
	l.counts[a]--
	l.counts[b]++
	for t, v := range s.x.Row(i) {
		l.delta[int(a)*s.d+t] -= float64(v)
		l.delta[int(b)*s.d+t] += float64(v)
	}
}

// result returns the fit: exact distances of the points to their centres
// and the objective, in float64, over the final assignment.
func (s *lloydState) result(iter int, converged bool) *Result {
	r := &Result{Centroids: s.centres, Labels: s.labels, Dist: s.upper, Sizes: s.counts, Iterations: iter, Converged: converged, DistanceEvals: s.evals}
	partial := make([]float64, s.workers)
	parallel(s.n, s.workers, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			sq := SquaredDistance(s.x.Row(i), s.centres.Row(int(s.labels[i])))
			s.upper[i] = float32(math.Sqrt(sq))
			partial[w] += sq
		}
	})
	for _, p := range partial {
		r.Inertia += p
	}
	return r
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
