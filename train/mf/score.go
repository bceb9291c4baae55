package mf

import (
	"cmp"
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Scoring many subjects against every item is a dense product (subjects ×
// items × d) followed by a top-k selection per subject. The kernel keeps
// the item factors in float32 panels of panelWidth items, scores
// kernelRows subjects against a panel at a time with FMA (score_amd64.s),
// and compares every score with its subject's current k-th best before
// anything leaves the registers: a tile is stored only when one of its
// scores may enter a top list, so the full score matrix never exists.
//
// The ranking itself is exact in float64. The float32 scores only filter:
// with e the float32 error bound of a subject (errBound) and T the k-th
// best float32 score of its rankable items, every item of the float64 top
// k scores at least T - 2e in float32 (k items score at least T - e in
// float64, so the k-th best float64 score is at least T - e, and an item
// at or above it is at most e lower in float32). The kernel keeps the items
// at or above the running T - 2e as candidates (T only rises), and at the
// end the candidates still at or above the final T - 2e, about k of them,
// are recomputed in float64 exactly as Model.Score computes them (predict)
// and ordered by a bounded heap (ties: the lower key first). The top lists
// are therefore the float64 ranking's, bit for bit.
const (
	panelWidth = 16 // items per panel: two AVX2 registers
	kernelRows = 6  // subjects per kernel call: 12 accumulators
	tileSize   = kernelRows * panelWidth

	// subjectBlock subjects are solved together and share each pass over
	// the items (a multiple of kernelRows).
	subjectBlock = 8 * kernelRows
	// chunkPanels panels (512 KiB at d = 32) stay in L2 while every
	// kernel row of a subject block passes over them.
	chunkPanels = 256
	// callPanels panels per kernel call: the thresholds rise between
	// calls, so that few tiles are stored once the heaps are full.
	callPanels = 32
)

// panels are a model's item factors in the kernel's layout: panel p holds
// the items at positions p·16 … p·16+15 of order, coordinate q of its items
// at v[(p·d+q)·16:][:16]. Padding and items that are not ranked have bias
// -Inf and never score.
//
// order puts the items by descending bias (ties: the lower index first),
// those not ranked last. The threshold a subject's list must beat rises as
// its items are seen, and every item above it is stored, offered to the
// float32 heap and kept as a candidate: in the model's order the k-th best
// rises through the whole pass, about k·ln(n/k) times, while in an order
// whose first items score high it is near its final value after the first
// panels. The bias, in which popularity shows, is what every subject's
// score shares. The order changes nothing but the work: the candidates
// that survive are those at or above the final threshold, whatever the
// order, and their float64 ranking is a total order.
type panels struct {
	d, n, np int
	v        []float32
	bias     []float32
	order    []int32 // position -> the model's item
	at       []int32 // the model's item -> position
	// vmax is the largest ‖v_j‖₂, bmax the largest |b_j|: with a
	// subject's ‖u‖ they bound the float32 kernel's error (errBound).
	vmax, bmax float64
}

func newPanels(m *Model, keys []int32) *panels {
	d, n := m.Dim, len(m.Items)
	np := (n + panelWidth - 1) / panelWidth
	p := &panels{d: d, n: n, np: np, v: make([]float32, np*d*panelWidth), bias: make([]float32, np*panelWidth),
		order: make([]int32, n), at: make([]int32, n)}
	ranked := func(j int32) bool { return keys == nil || keys[j] >= 0 }
	for j := range p.order {
		p.order[j] = int32(j)
	}
	slices.SortFunc(p.order, func(a, b int32) int {
		if ra, rb := ranked(a), ranked(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(m.Row(int(b))[d], m.Row(int(a))[d]), cmp.Compare(a, b))
	})
	for pos, j := range p.order {
		p.at[j] = int32(pos)
	}
	for pos := range np * panelWidth {
		if pos >= n || !ranked(p.order[pos]) {
			p.bias[pos] = float32(math.Inf(-1))
			continue
		}
		r := m.Row(int(p.order[pos]))
		base := (pos/panelWidth)*d*panelWidth + pos%panelWidth
		norm := 0.0
		for q := range d {
			p.v[base+q*panelWidth] = float32(r[q])
			norm += r[q] * r[q]
		}
		p.bias[pos] = float32(r[d])
		p.vmax = max(p.vmax, math.Sqrt(norm))
		p.bmax = max(p.bmax, math.Abs(r[d]))
	}
	return p
}

// errBound bounds |s32 - s64| for a subject with ‖u‖₂ = unorm, where s64 is
// Model.Score's float64 score and s32 the kernel's: rounding u, v and b to
// float32 and d multiply-adds (fused or not) cost at most 2d+3 float32
// roundings, each of at most 2⁻²⁴ of |b| + Σ|u_q v_q| ≤ bmax + ‖u‖·vmax
// (Cauchy–Schwarz); float64's own error is far smaller than one of them.
// Twice that, plus an absolute term for underflow.
func (p *panels) errBound(unorm float64) float64 {
	const eps32 = 1.0 / (1 << 24)
	return 2*float64(2*p.d+4)*eps32*(p.bmax+unorm*p.vmax) + 1e-30
}

// ranked is one entry of a top list.
type ranked struct {
	score float64
	item  int32 // in the model's items
	key   int32 // ties: the lower key ranks first
}

// better reports whether a ranks before b.
func (a ranked) better(b ranked) bool {
	return a.score > b.score || (a.score == b.score && a.key < b.key)
}

// candSlack·k + panelWidth candidates make a subject's list prune itself.
const candSlack = 4

// cand32 is a candidate of a top list: an item and its float32 score.
type cand32 struct {
	score float32
	item  int32
}

// top32 is a bounded min-heap of the k best float32 scores: the root is
// the k-th best once k were offered.
type top32 struct {
	k int
	h []float32
}

func (t *top32) reset(k int) { t.k, t.h = k, t.h[:0] }

func (t *top32) full() bool { return len(t.h) == t.k }

// offer adds v if it is among the k best so far and reports whether the
// heap is full and its root may have changed.
func (t *top32) offer(v float32) bool {
	h := t.h
	if len(h) < t.k {
		h = append(h, v)
		for i := len(h) - 1; i > 0; {
			up := (i - 1) / 2
			if h[up] <= h[i] {
				break
			}
			h[i], h[up] = h[up], h[i]
			i = up
		}
		t.h = h
		return len(h) == t.k
	}
	if t.k == 0 || v <= h[0] {
		return false
	}
	h[0] = v
	for i := 0; ; {
		w, l := i, 2*i+1
		if l < len(h) && h[l] < h[w] {
			w = l
		}
		if r := l + 1; r < len(h) && h[r] < h[w] {
			w = r
		}
		if w == i {
			return true
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// topHeap is a bounded min-heap of the k best entries: the root is the
// worst of them, the one a better candidate replaces.
type topHeap struct {
	k int
	h []ranked
}

func (t *topHeap) reset(k int) { t.k, t.h = k, t.h[:0] }

func (t *topHeap) full() bool { return len(t.h) == t.k }

// offer adds e if it is among the k best so far.
func (t *topHeap) offer(e ranked) {
	if len(t.h) < t.k {
		t.h = append(t.h, e)
		for i := len(t.h) - 1; i > 0; {
			up := (i - 1) / 2
			if !t.h[up].better(t.h[i]) {
				break
			}
			t.h[i], t.h[up] = t.h[up], t.h[i]
			i = up
		}
		return
	}
	if t.k == 0 || !e.better(t.h[0]) {
		return
	}
	t.h[0] = e
	for i := 0; ; {
		w, l := i, 2*i+1
		if l < len(t.h) && t.h[w].better(t.h[l]) {
			w = l
		}
		if r := l + 1; r < len(t.h) && t.h[w].better(t.h[r]) {
			w = r
		}
		if w == i {
			return
		}
		t.h[i], t.h[w] = t.h[w], t.h[i]
		i = w
	}
}

// sorted orders the heap best first, in place, and returns it.
func (t *topHeap) sorted() []ranked {
	h := t.h
	for n := len(h) - 1; n > 0; n-- {
		h[0], h[n] = h[n], h[0]
		for i := 0; ; {
			w, l := i, 2*i+1
			if l < n && h[w].better(h[l]) {
				w = l
			}
			if r := l + 1; r < n && h[w].better(h[r]) {
				w = r
			}
			if w == i {
				break
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	return h
}

// scoreTask says what to rank for a subject: its factor is solved from
// rows (in the model's items), and the items of exclude (the model's
// indices, in any order; rank turns them into the panels' positions, in
// place) are not ranked.
type scoreTask struct {
	rows    []Interaction
	exclude []int32
}

// solved is what a subject's solve leaves for emit: the rows of its task
// and, when rankModel keeps them, the Cholesky factor of its system (lower
// triangle, d×d, as cholFactor leaves it; nil otherwise). Both belong to
// the worker and are reused after emit returns.
type solved struct {
	rows []Interaction
	chol []float64
}

// rankModel ranks the model's items for n subjects, parallel over blocks
// of subjects on workers goroutines. task(w, i, buf) returns subject i's
// task (buf is worker w's to reuse); emit(w, i, top, sub) receives its k
// best items, best first, with their float64 scores u·v_j + b_j, and what
// its solve left (with keepFactors, the factor too); top and sub belong to
// the worker and are reused after emit returns. keys, when set, break ties
// (the lower key first; nil: the lower item), and items with a negative
// key are not ranked. task and emit are called on
// worker w's goroutine, never concurrently for the same w.
func rankModel(ctx context.Context, m *Model, n, k int, keys []int32, workers int, keepFactors bool,
	task func(w, i int, buf *scoreTask), emit func(w, i int, top []ranked, sub solved) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if n == 0 {
		return nil
	}
	pan := newPanels(m, keys)
	solver := NewSolver(m)
	blocks := (n + subjectBlock - 1) / subjectBlock
	var next atomic.Int64
	errs := make([]error, workers)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := range min(workers, blocks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newBlockRanker(m, pan, solver, k, keys, keepFactors)
			for !failed.Load() {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
				lo, hi := b*subjectBlock, min(n, (b+1)*subjectBlock)
				if err := r.rank(lo, hi, func(i int, buf *scoreTask) { task(w, i, buf) }, func(i int, top []ranked, sub solved) error { return emit(w, i, top, sub) }); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// blockRanker is one worker's state: a block of subjects' factors in the
// kernel's layout, their heaps and thresholds, the kernel's tile and flags.
type blockRanker struct {
	m      *Model
	pan    *panels
	solver *Solver
	k      int
	keys   []int32

	tasks  [subjectBlock]scoreTask
	heaps  [subjectBlock]topHeap
	best32 [subjectBlock]top32    // the k best float32 scores so far
	cands  [subjectBlock][]cand32 // items at or above the running T - 2e
	errb   [subjectBlock]float64  // errBound of each subject
	ex     [subjectBlock]int      // position in its exclude list
	u64    []float64              // subjectBlock × d
	u32    []float32              // per kernel row: d × kernelRows
	thr    [subjectBlock / kernelRows][kernelRows]float32
	tile   []float32
	flags  []uint8
	a, rhs []float64
	// chols holds each subject's factor (subjectBlock × d×d) when the
	// factors are kept for emit; nil: every solve factors in a.
	chols []float64
}

func newBlockRanker(m *Model, pan *panels, solver *Solver, k int, keys []int32, keepFactors bool) *blockRanker {
	d := m.Dim
	r := &blockRanker{m: m, pan: pan, solver: solver, k: k, keys: keys,
		u64: make([]float64, subjectBlock*d), u32: make([]float32, subjectBlock*d),
		tile: make([]float32, callPanels*tileSize), flags: make([]uint8, callPanels),
		a: make([]float64, d*d), rhs: make([]float64, d)}
	if keepFactors {
		r.chols = make([]float64, subjectBlock*d*d)
	}
	for i := range r.heaps {
		r.heaps[i].h = make([]ranked, 0, k)
		r.best32[i].h = make([]float32, 0, k)
		r.cands[i] = make([]cand32, 0, candSlack*k+panelWidth)
	}
	return r
}

// rank ranks subjects lo … hi-1 (at most subjectBlock of them).
func (r *blockRanker) rank(lo, hi int, task func(i int, buf *scoreTask), emit func(i int, top []ranked, sub solved) error) error {
	d, pan := r.m.Dim, r.pan
	nb := hi - lo
	rows := (nb + kernelRows - 1) / kernelRows
	clear(r.u32[:rows*kernelRows*d])
	for s := range nb {
		t := &r.tasks[s]
		t.rows, t.exclude = t.rows[:0], t.exclude[:0]
		task(lo+s, t)
		// collect walks the items in the panels' order.
		for i, j := range t.exclude {
			t.exclude[i] = pan.at[j]
		}
		slices.Sort(t.exclude)
		u := r.u64[s*d : (s+1)*d]
		if err := r.solver.Solve(t.rows, u, r.factor(s), r.rhs); err != nil {
			return err
		}
		norm := 0.0
		row, lane := s/kernelRows, s%kernelRows
		for q, v := range u {
			r.u32[(row*d+q)*kernelRows+lane] = float32(v)
			norm += v * v
		}
		r.errb[s] = pan.errBound(math.Sqrt(norm))
		r.heaps[s].reset(r.k)
		r.best32[s].reset(r.k)
		r.cands[s] = r.cands[s][:0]
		r.ex[s] = 0
	}
	for row := range rows {
		for lane := range kernelRows {
			// Nothing scores at or above +Inf: padding rows never store.
			r.thr[row][lane] = float32(math.Inf(1))
			if s := row*kernelRows + lane; s < nb {
				r.thr[row][lane] = r.threshold(s)
			}
		}
	}
	for c0 := 0; c0 < pan.np; c0 += chunkPanels {
		c1 := min(pan.np, c0+chunkPanels)
		for row := range rows {
			u := r.u32[row*d*kernelRows : (row+1)*d*kernelRows]
			for p0 := c0; p0 < c1; {
				p1 := min(c1, p0+r.callSize(row, nb))
				scorePanels(r.tile, r.flags[:p1-p0], u, pan.v[p0*d*panelWidth:p1*d*panelWidth], pan.bias[p0*panelWidth:p1*panelWidth], d, &r.thr[row])
				r.collect(row, p0, p1)
				p0 = p1
			}
		}
	}
	for s := range nb {
		r.prune(s)
		u, h := r.u64[s*d:(s+1)*d], &r.heaps[s]
		for _, c := range r.cands[s] {
			key := c.item
			if r.keys != nil {
				key = r.keys[c.item]
			}
			h.offer(ranked{score: r.m.predict(u, int(c.item)), item: c.item, key: key})
		}
		sub := solved{rows: r.tasks[s].rows}
		if r.chols != nil {
			sub.chol = r.factor(s)
		}
		if err := emit(lo+s, h.sorted(), sub); err != nil {
			return err
		}
	}
	return nil
}

// factor is the scratch subject s's Solve builds its system in, and leaves
// its Cholesky factor in (cholSolve): its own when the factors are kept.
func (r *blockRanker) factor(s int) []float64 {
	if r.chols == nil {
		return r.a
	}
	d := r.m.Dim
	return r.chols[s*d*d : (s+1)*d*d]
}

// callSize is the number of panels of kernel row row's next kernel call:
// callPanels once every heap of the row is full, and until then only
// enough panels to fill them, so that the first items of every subject are
// not all stored and recomputed in float64 against a threshold no score
// fails.
func (r *blockRanker) callSize(row, nb int) int {
	for lane := range kernelRows {
		if s := row*kernelRows + lane; s < nb && r.k > 0 && !r.best32[s].full() {
			return (r.k+panelWidth-1)/panelWidth + 1
		}
	}
	return callPanels
}

// collect offers the stored tiles' candidates of kernel row row, panels
// p0 … p1-1, to their subjects' heaps.
func (r *blockRanker) collect(row, p0, p1 int) {
	for p, f := range r.flags[:p1-p0] {
		if f == 0 {
			continue
		}
		tile := r.tile[p*tileSize : (p+1)*tileSize]
		for lane := range kernelRows {
			if f&(1<<lane) == 0 {
				continue
			}
			s := row*kernelRows + lane
			t, best := &r.tasks[s], &r.best32[s]
			for c, v := range tile[lane*panelWidth : (lane+1)*panelWidth] {
				if v < r.thr[row][lane] {
					continue
				}
				at := int32((p0+p)*panelWidth + c)
				if int(at) >= r.pan.n {
					break
				}
				ex := t.exclude
				for r.ex[s] < len(ex) && ex[r.ex[s]] < at {
					r.ex[s]++
				}
				if r.ex[s] < len(ex) && ex[r.ex[s]] == at {
					continue
				}
				j := r.pan.order[at]
				if r.keys != nil && r.keys[j] < 0 {
					continue
				}
				r.cands[s] = append(r.cands[s], cand32{score: v, item: j})
				if best.offer(v) {
					r.thr[row][lane] = r.threshold(s)
				}
				if len(r.cands[s]) >= candSlack*r.k+panelWidth {
					r.prune(s)
				}
			}
		}
	}
}

// threshold is the float32 score below which no item can enter subject
// s's top list: the k-th best float32 score T less twice the error bound,
// rounded down; the lowest finite float32 while fewer than k items were
// seen, so that items scoring -Inf never enter.
func (r *blockRanker) threshold(s int) float32 {
	h := &r.best32[s]
	if !h.full() || h.k == 0 {
		if h.k == 0 {
			return float32(math.Inf(1))
		}
		return -math.MaxFloat32
	}
	t := float64(h.h[0]) - 2*r.errb[s]
	f := float32(t)
	if float64(f) > t {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// prune drops subject s's candidates below its current threshold.
func (r *blockRanker) prune(s int) {
	thr := r.threshold(s)
	c := r.cands[s][:0]
	for _, x := range r.cands[s] {
		if x.score >= thr {
			c = append(c, x)
		}
	}
	r.cands[s] = c
}

// scorePanelsGeneric is the portable kernel: for each panel p of v (d ×
// panelWidth floats) it scores the kernelRows subjects of u (d ×
// kernelRows, coordinate-major) against the panel's items, and when a
// score of subject lane is at least thr[lane] it stores the panel's tile
// (lane l's scores at tile[p·tileSize + l·panelWidth:]) and sets bit l of
// flags[p]; otherwise flags[p] is 0 and the tile is left as it was.
func scorePanelsGeneric(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	var acc [tileSize]float32
	for p := range flags {
		pv := v[p*d*panelWidth : (p+1)*d*panelWidth]
		pb := bias[p*panelWidth : (p+1)*panelWidth]
		for l := range kernelRows {
			copy(acc[l*panelWidth:(l+1)*panelWidth], pb)
		}
		for q := range d {
			vq := pv[q*panelWidth : (q+1)*panelWidth]
			uq := u[q*kernelRows : (q+1)*kernelRows]
			for l, ul := range uq {
				a := acc[l*panelWidth : (l+1)*panelWidth]
				for c, vc := range vq {
					a[c] += ul * vc
				}
			}
		}
		var f uint8
		for l := range kernelRows {
			for _, s := range acc[l*panelWidth : (l+1)*panelWidth] {
				if s >= thr[l] {
					f |= 1 << l
					break
				}
			}
		}
		flags[p] = f
		if f != 0 {
			copy(tile[p*tileSize:(p+1)*tileSize], acc[:])
		}
	}
}
