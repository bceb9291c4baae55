package mf

import (
	"github.com/veil-privacy/veil/dataset"

	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// randomModel has n items of dimension d; dup items repeat item 0's
// factors (exact ties).
func randomModel(d, n, dup int, seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 3))
	m := &Model{Dim: d, Items: make([]string, n), P: make([]float64, n*(d+1)), Lambda: 1, Unobserved: 0.05}
	for j := range n {
		m.Items[j] = fmt.Sprintf("i%05d", j)
		row := m.Row(j)
		if j > 0 && j <= dup {
			copy(row, m.Row(0))
			continue
		}
		for q := range row {
			row[q] = r.NormFloat64() * 0.3
		}
	}
	return m
}

// randomTasks gives each subject up to per interactions with distinct
// items, by time order, and excludes them.
func randomTasks(n, items, per int, seed uint64) []scoreTask {
	r := rand.New(rand.NewPCG(seed, 4))
	tasks := make([]scoreTask, n)
	for i := range tasks {
		seen := map[int32]bool{}
		for range r.IntN(per + 1) {
			j := int32(r.IntN(items))
			if seen[j] {
				continue
			}
			seen[j] = true
			tasks[i].rows = append(tasks[i].rows, Interaction{Item: j, Weight: float32(1 + r.IntN(3))})
			tasks[i].exclude = append(tasks[i].exclude, j)
		}
		slices.Sort(tasks[i].exclude)
	}
	return tasks
}

// naiveTop is the reference: the subject's factor, every score in float64
// by Model.Score, excluded items removed, sorted by score (ties: lower
// key), the first k.
func naiveTop(t *testing.T, m *Model, task scoreTask, k int, keys []int32) []ranked {
	t.Helper()
	d := m.Dim
	u, a, rhs := make([]float64, d), make([]float64, d*d), make([]float64, d)
	if err := NewSolver(m).Solve(task.rows, u, a, rhs); err != nil {
		t.Fatal(err)
	}
	scores := make([]float64, len(m.Items))
	m.Score(u, scores)
	var all []ranked
	for j, s := range scores {
		if !slices.Contains(task.exclude, int32(j)) {
			key := int32(j)
			if keys != nil {
				key = keys[j]
			}
			if key < 0 {
				continue
			}
			all = append(all, ranked{score: s, item: int32(j), key: key})
		}
	}
	slices.SortFunc(all, func(x, y ranked) int { return cmp.Or(cmp.Compare(y.score, x.score), cmp.Compare(x.key, y.key)) })
	return all[:min(k, len(all))]
}

// TestRankModelMatchesNaive: the blocked float32 kernel with exact float64
// rescoring returns the naive float64 ranking exactly (same items, same
// scores bit for bit, ties by the lower key), for shapes around the
// kernel's panel, row and block sizes.
func TestRankModelMatchesNaive(t *testing.T) {
	cases := []struct{ d, items, subjects, k, dup int }{
		{1, 1, 1, 1, 0},
		{3, 15, 7, 5, 0},
		{16, 16, 6, 20, 0},
		{32, 17, 13, 3, 4},
		{32, 1000, 49, 20, 30},
		{33, 4099, 100, 20, 0},
		{8, 300, 5, 300, 50},
		{32, 9000, 97, 50, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("d%d_items%d_subjects%d_k%d_dup%d", c.d, c.items, c.subjects, c.k, c.dup), func(t *testing.T) {
			m := randomModel(c.d, c.items, c.dup, uint64(c.items))
			tasks := randomTasks(c.subjects, c.items, 30, uint64(c.d))
			for _, reversed := range []bool{false, true} {
				var keys []int32
				if reversed { // ties broken by another order than the model's; every 7th item not ranked
					keys = make([]int32, c.items)
					for j := range keys {
						keys[j] = int32(c.items - j)
						if j%7 == 3 {
							keys[j] = -1
						}
					}
				}
				got := make([][]ranked, c.subjects)
				var mu sync.Mutex
				err := rankModel(context.Background(), m, c.subjects, c.k, keys, 2, false,
					func(_, i int, buf *scoreTask) {
						buf.rows = append(buf.rows, tasks[i].rows...)
						buf.exclude = append(buf.exclude, tasks[i].exclude...)
					},
					func(_, i int, top []ranked, _ solved) error {
						mu.Lock()
						got[i] = slices.Clone(top)
						mu.Unlock()
						return nil
					})
				if err != nil {
					t.Fatal(err)
				}
				for i := range c.subjects {
					want := naiveTop(t, m, tasks[i], c.k, keys)
					if !slices.Equal(got[i], want) {
						t.Fatalf("subject %d (keys reversed %v):\n got %v\nwant %v", i, reversed, got[i], want)
					}
				}
			}
		})
	}
}

// TestScorePanelsKernel: the vector kernel flags the same rows as the
// portable one and its tiles agree to float32 rounding (the fused and the
// unfused sums differ in the last bits, which errBound covers).
func TestScorePanelsKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, d := range []int{1, 2, 7, 32, 33, 64} {
		np := 9
		u := make([]float32, d*kernelRows)
		v := make([]float32, np*d*panelWidth)
		bias := make([]float32, np*panelWidth)
		for _, x := range [][]float32{u, v, bias} {
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
		}
		bias[np*panelWidth-1] = float32(math.Inf(-1))
		for _, level := range []float32{float32(math.Inf(-1)), -math.MaxFloat32, 0, 1, 3, float32(math.Inf(1))} {
			thr := [kernelRows]float32{level, level, level + 1, level - 1, level, -level}
			gotT, wantT := make([]float32, np*tileSize), make([]float32, np*tileSize)
			gotF, wantF := make([]uint8, np), make([]uint8, np)
			scorePanels(gotT, gotF, u, v, bias, d, &thr)
			scorePanelsGeneric(wantT, wantF, u, v, bias, d, &thr)
			for p := range np {
				for i, w := range wantT[p*tileSize : (p+1)*tileSize] {
					g := gotT[p*tileSize+i]
					if tol := 1e-5 * float64(d) * (1 + math.Abs(float64(w))); !(math.Abs(float64(g-w)) <= tol) && !(math.IsInf(float64(g), -1) && math.IsInf(float64(w), -1)) {
						t.Fatalf("d=%d panel %d score %d: %v, portable %v", d, p, i, g, w)
					}
				}
				// A score exactly at a threshold may round to either side;
				// random normal data puts none there.
				if gotF[p] != wantF[p] {
					t.Errorf("d=%d threshold %v panel %d: flags %06b, portable %06b", d, level, p, gotF[p], wantF[p])
				}
			}
		}
	}
}

// BenchmarkScore ranks the top 20 of 20,000 items for 2,400 subjects with
// d = 32 (the shop, 65k × 20k × 32, cut to fit an iteration):
// "rank" is the whole path (each subject's solve, the kernel, the top-k
// heaps), "kernel" the vector kernel alone over the same product with
// thresholds no score reaches. GFLOP/s counts the dense product's 2·d
// flops per score; the baseline is the float64 Score and topK per subject
// that evaluation used before.
func BenchmarkScore(b *testing.B) {
	const d, items, subjects, k = 32, 20000, 2400, 20
	m := randomModel(d, items, 0, 1)
	tasks := randomTasks(subjects, items, 120, 2)
	flops := 2 * float64(d) * items * subjects
	// GFLOP/CPU-s divides by the process's CPU time rather than the wall
	// time: on a machine other jobs load it stays near what the code does
	// on an idle one (where GFLOP/s ≈ GFLOP/CPU-s × the cores it keeps busy).
	var cpu0 time.Duration
	start := func(b *testing.B) {
		cpu0 = cpuTime(b)
		b.ResetTimer()
	}
	report := func(b *testing.B) {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		b.ReportMetric(flops*float64(b.N)/(cpuTime(b)-cpu0).Seconds()/1e9, "GFLOP/CPU-s")
	}
	// The kernel this CPU uses, and the AVX2 one beside it where AVX-512
	// is there (the same bits, half the lanes).
	vectors := []struct {
		suffix string
		avx512 bool
	}{{"", haveAVX512}}
	if haveAVX512 {
		vectors = append(vectors, struct {
			suffix string
			avx512 bool
		}{"-avx2", false})
	}
	for _, c := range vectors {
		defer func(v bool) { haveAVX512 = v }(haveAVX512)
		haveAVX512 = c.avx512
		b.Run("rank"+c.suffix, func(b *testing.B) {
			b.ReportAllocs()
			start(b)
			for b.Loop() {
				err := rankModel(context.Background(), m, subjects, k, nil, 0, false,
					func(_, i int, buf *scoreTask) {
						buf.rows = append(buf.rows, tasks[i].rows...)
						buf.exclude = append(buf.exclude, tasks[i].exclude...)
					},
					func(int, int, []ranked, solved) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run("kernel"+c.suffix, func(b *testing.B) {
			pan := newPanels(m, nil)
			u := make([]float32, d*kernelRows)
			for i := range u {
				u[i] = 0.1
			}
			thr := [kernelRows]float32{}
			for i := range thr {
				thr[i] = float32(math.Inf(1))
			}
			b.SetBytes(int64(len(pan.v) * 4))
			start(b)
			for b.Loop() {
				// One worker's share: half the subjects, on each of 2 goroutines.
				var wg sync.WaitGroup
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						tile, flags := make([]float32, callPanels*tileSize), make([]uint8, callPanels)
						for range subjects / kernelRows / 2 {
							for p0 := 0; p0 < pan.np; p0 += callPanels {
								p1 := min(pan.np, p0+callPanels)
								scorePanels(tile, flags[:p1-p0], u, pan.v[p0*d*panelWidth:p1*d*panelWidth], pan.bias[p0*panelWidth:p1*panelWidth], d, &thr)
							}
						}
					}()
				}
				wg.Wait()
			}
			report(b)
		})
	}
	b.Run("before", func(b *testing.B) {
		// The float64 path evaluation and recommendations took before:
		// solve, Score every item, exclude, topK, on 2 goroutines.
		solver := NewSolver(m)
		start(b)
		for b.Loop() {
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					u, a, rhs := make([]float64, d), make([]float64, d*d), make([]float64, d)
					scores := make([]float64, items)
					idx := make([]int32, 0, k)
					for i := w; i < subjects; i += 2 {
						if err := solver.Solve(tasks[i].rows, u, a, rhs); err != nil {
							b.Error(err)
							return
						}
						m.Score(u, scores)
						for _, j := range tasks[i].exclude {
							scores[j] = math.Inf(-1)
						}
						idx = topK(scores, k, idx[:0])
					}
				}()
			}
			wg.Wait()
		}
		report(b)
	})
}

// topK is the selection evaluation and recommendations used before the
// kernel, the benchmark's baseline: it returns the indices of the k largest scores, best first (ties by
// lower index).
func topK(scores []float64, k int, idx []int32) []int32 {
	for j, s := range scores {
		if math.IsInf(s, -1) {
			continue
		}
		if len(idx) < k {
			idx = append(idx, int32(j))
			if len(idx) == k {
				slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
			}
			continue
		}
		if s <= scores[idx[k-1]] {
			continue
		}
		// insert in order
		i := k - 1
		for i > 0 && scores[idx[i-1]] < s {
			idx[i] = idx[i-1]
			i--
		}
		idx[i] = int32(j)
	}
	if len(idx) < k {
		slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
	}
	return idx
}

// referenceTop ranks items (indices of a list of n items; the model's item
// j is list item keys[j], or j when keys is nil) for a subject the naive
// way: every score in float64, rows excluded, sorted by score, ties by
// the lower index, the first k.
func referenceTop(t *testing.T, m *Model, keys []int32, n int, rows []Interaction, k int) []int32 {
	t.Helper()
	toList := func(j int) int32 {
		if keys == nil {
			return int32(j)
		}
		return keys[j]
	}
	var own []Interaction
	for _, x := range rows { // rows are in the list's items: to the model's
		for j := range m.Items {
			if toList(j) == x.Item {
				x.Item = int32(j)
				own = append(own, x)
				break
			}
		}
	}
	d := m.Dim
	u, a, rhs := make([]float64, d), make([]float64, d*d), make([]float64, d)
	if err := NewSolver(m).Solve(own, u, a, rhs); err != nil {
		t.Fatal(err)
	}
	scores := make([]float64, n)
	for i := range scores {
		scores[i] = math.Inf(-1)
	}
	for j := range m.Items {
		if i := toList(j); i >= 0 {
			scores[i] = m.predict(u, j)
		}
	}
	for _, x := range rows {
		scores[x.Item] = math.Inf(-1)
	}
	var order []int32
	for i, s := range scores {
		if !math.IsInf(s, -1) {
			order = append(order, int32(i))
		}
	}
	slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(scores[y], scores[x]) })
	return order[:min(k, len(order))]
}

// TestEvaluateAndRecommendMatchReference: Evaluate and Recommend through
// the kernel give the naive float64 ranking's metrics and lists, for a
// model over the data's items and for one over other items (a catalog in
// another order, with items the data lacks and without some it has).
// Metrics are means of the same per-subject terms summed in another order:
// equal to 1e-12.
func TestEvaluateAndRecommendMatchReference(t *testing.T) {
	d := planted(600, 300, 6, 12, 3)
	tr, test := d.Split(2, 0, false, 1)
	same := randomModel(8, len(tr.Items), 0, 7)
	same.Items = tr.Items
	other := randomModel(8, len(tr.Items)+40, 3, 8)
	for j := range other.Items {
		if k := len(other.Items) - 1 - j; k < len(tr.Items) && k%9 != 4 {
			other.Items[j] = tr.Items[k]
		} else {
			other.Items[j] = fmt.Sprintf("zz-catalog-%d", j)
		}
	}
	for name, m := range map[string]*Model{"same items": same, "catalog": other} {
		t.Run(name, func(t *testing.T) {
			rk := ModelRanker(m, tr.Items)
			got, err := Evaluate(tr, test, rk, 3)
			if err != nil {
				t.Fatal(err)
			}
			var want Metrics
			seen := map[int32]bool{}
			for s := range test {
				if len(test[s]) == 0 || len(tr.Rows[s]) == 0 {
					continue
				}
				top := referenceTop(t, m, rk.keys, len(tr.Items), tr.Rows[s], 20)
				var dcg10, dcg20, idcg10, idcg20 float64
				var hits10, hits20 float64
				for rnk, j := range top {
					seen[j] = true
					if slices.Contains(test[s], j) {
						g := 1 / math.Log2(float64(rnk)+2)
						dcg20, hits20 = dcg20+g, hits20+1
						if rnk < 10 {
							dcg10, hits10 = dcg10+g, hits10+1
						}
					}
				}
				for i := range min(20, len(test[s])) {
					g := 1 / math.Log2(float64(i)+2)
					idcg20 += g
					if i < 10 {
						idcg10 += g
					}
				}
				want.Subjects++
				want.Recall10 += hits10 / float64(min(10, len(test[s])))
				want.Recall20 += hits20 / float64(min(20, len(test[s])))
				want.NDCG10 += dcg10 / idcg10
				want.NDCG20 += dcg20 / idcg20
			}
			n := float64(want.Subjects)
			want.Recall10, want.Recall20, want.NDCG10, want.NDCG20 = want.Recall10/n, want.Recall20/n, want.NDCG10/n, want.NDCG20/n
			want.Coverage = float64(len(seen)) / float64(len(tr.Items))
			close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }
			if got.Subjects != want.Subjects || got.Coverage != want.Coverage || !close(got.Recall10, want.Recall10) || !close(got.Recall20, want.Recall20) ||
				!close(got.NDCG10, want.NDCG10) || !close(got.NDCG20, want.NDCG20) {
				t.Errorf("metrics %+v, reference %+v", got, want)
			}

			// Recommendations rank the model's items.
			var subjects []int
			for s, r := range d.Rows {
				if len(r) > 0 {
					subjects = append(subjects, s)
				}
			}
			per := make([][]dataset.Recommendation, len(subjects))
			err = RecommendEach(d, m, subjects, 7, 0, 2, false, func(e int, top []Recommended, _ [][]Contribution) error {
				for r, x := range top {
					per[e] = append(per[e], dataset.Recommendation{SubjectID: d.Subjects[subjects[e]], Rank: int64(r + 1), ItemID: m.Items[x.Item], Score: x.Score})
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			recs := slices.Concat(per...)
			toModel := itemIndex(d.Items, m.Items)
			var wantRecs []dataset.Recommendation
			for s, rows := range d.Rows {
				if len(rows) == 0 {
					continue
				}
				var own []Interaction
				for _, x := range rows {
					if j := toModel[x.Item]; j >= 0 {
						x.Item = j
						own = append(own, x)
					}
				}
				u := make([]float64, m.Dim)
				if err := NewSolver(m).Solve(own, u, make([]float64, m.Dim*m.Dim), make([]float64, m.Dim)); err != nil {
					t.Fatal(err)
				}
				for r, j := range referenceTop(t, m, nil, len(m.Items), own, 7) {
					wantRecs = append(wantRecs, dataset.Recommendation{SubjectID: d.Subjects[s], Rank: int64(r + 1), ItemID: m.Items[j], Score: m.predict(u, int(j))})
				}
			}
			if !slices.Equal(recs, wantRecs) {
				t.Errorf("%d recommendations differ from the reference's %d", len(recs), len(wantRecs))
			}
		})
	}
}

// TestPopularityRanking: popularity ranks by count, ties by the lower
// index, without the subject's own items.
func TestPopularityRanking(t *testing.T) {
	tr := &Data{Items: []string{"a", "b", "c", "d", "e"}, Subjects: []string{"s", "t", "u"}, Rows: [][]Interaction{
		{{Item: 3}, {Item: 1}}, {{Item: 3}, {Item: 4}}, {{Item: 1}, {Item: 3}, {Item: 2}}}}
	// counts: a 0, b 2, c 1, d 3, e 1
	want := [][]int32{{2, 4, 0}, {1, 2, 0}, {4, 0}}
	got := make([][]int32, 3)
	err := PopularityRanker(tr).rankSubjects([]int{0, 1, 2}, func(s int) []Interaction { return tr.Rows[s] }, 3, 2, func(_, i int, top []int32) error {
		got[i] = slices.Clone(top)
		return nil
	})
	if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got %v (%v), want %v", got, err, want)
	}
}

// solveReference is Solve as it was before it built only the lower
// triangle, four interactions at a time: the reference of its bits.
func solveReference(s *Solver, rows []Interaction, u, a, rhs []float64) error {
	m, d := s.m, s.m.Dim
	copy(a, s.gram)
	for i := range d {
		a[i*d+i] += m.Lambda
		rhs[i] = -s.vtb[i]
	}
	w0 := m.Unobserved
	for _, x := range rows {
		r := m.Row(int(x.Item))
		c := float64(x.Weight)
		extra := c - w0
		b := r[d]
		for p := range d {
			rp := r[p]
			ap := a[p*d : (p+1)*d]
			for q := range d {
				ap[q] = math.FMA(extra*rp, r[q], ap[q])
			}
			rhs[p] += c*(1-b)*rp + w0*b*rp
		}
	}
	return cholSolve(a, rhs, u, d)
}

// TestSolveBits: Solve gives the same factor, bit for bit, as adding one
// interaction after another over the whole matrix, with the vector kernels
// and without them (a CPU without AVX2).
func TestSolveBits(t *testing.T) {
	t.Run("vector", testSolveBits)
	vector := haveAVX2
	haveAVX2 = false
	defer func() { haveAVX2 = vector }()
	t.Run("scalar", testSolveBits)
}

func testSolveBits(t *testing.T) {
	for _, d := range []int{1, 3, 8, 32, 33} {
		m := randomModel(d, 500, 0, uint64(d))
		s := NewSolver(m)
		for i, task := range randomTasks(40, 500, 90, uint64(d)) {
			got, want := make([]float64, d), make([]float64, d)
			errG := s.Solve(task.rows, got, make([]float64, d*d), make([]float64, d))
			errW := solveReference(s, task.rows, want, make([]float64, d*d), make([]float64, d))
			if (errG == nil) != (errW == nil) || !slices.Equal(got, want) {
				t.Fatalf("d=%d subject %d (%d rows): %v (%v), reference %v (%v)", d, i, len(task.rows), got, errG, want, errW)
			}
		}
	}
}

// BenchmarkSolve solves subjects of 60 interactions at d = 32, the
// shop's mean, by Solve and by the reference (before) side by side.
func BenchmarkSolve(b *testing.B) {
	m := randomModel(32, 20000, 0, 1)
	s := NewSolver(m)
	tasks := randomTasks(256, 20000, 120, 2)
	u, a, rhs := make([]float64, 32), make([]float64, 32*32), make([]float64, 32)
	for _, c := range []struct {
		name  string
		solve func(*Solver, []Interaction, []float64, []float64, []float64) error
	}{{"solve", (*Solver).Solve}, {"before", solveReference}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for _, t := range tasks {
					if err := c.solve(s, t.rows, u, a, rhs); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tasks)), "ns/subject")
		})
	}
}

// TestNewSolverBits checks the Gramians against the plain sums over the
// full matrix, item after item, bit for bit (the lower triangle is built by
// the vector kernel and mirrored).
func TestNewSolverBits(t *testing.T) {
	for _, d := range []int{1, 3, 8, 32, 33} {
		for _, n := range []int{0, 1, 5, 403} {
			m := randomModel(d, n, 0, uint64(d+n))
			s := NewSolver(m)
			gram, vtb := make([]float64, d*d), make([]float64, d)
			for j := range n {
				r := m.Row(j)
				for a := range d {
					for c := range d {
						gram[a*d+c] = math.FMA(r[a], r[c], gram[a*d+c])
					}
					vtb[a] += r[a] * r[d]
				}
			}
			for i := range gram {
				gram[i] *= m.Unobserved
			}
			for i := range vtb {
				vtb[i] *= m.Unobserved
			}
			if !slices.Equal(s.gram, gram) || !slices.Equal(s.vtb, vtb) {
				t.Fatalf("d=%d n=%d: Gramians differ from the plain sums", d, n)
			}
		}
	}
}

// cholSolveReference is cholSolve one row at a time, as it was written
// first.
func cholSolveReference(a, b, x []float64, d int) error {
	for j := range d {
		s := a[j*d+j]
		for k := range j {
			s -= a[j*d+k] * a[j*d+k]
		}
		if !(s > 0) {
			return ErrDiverged
		}
		s = math.Sqrt(s)
		a[j*d+j] = s
		for i := j + 1; i < d; i++ {
			t := a[i*d+j]
			for k := range j {
				t -= a[i*d+k] * a[j*d+k]
			}
			a[i*d+j] = t / s
		}
	}
	for i := range d {
		t := b[i]
		for k := range i {
			t -= a[i*d+k] * x[k]
		}
		x[i] = t / a[i*d+i]
	}
	for i := d - 1; i >= 0; i-- {
		t := x[i]
		for k := i + 1; k < d; k++ {
			t -= a[k*d+i] * x[k]
		}
		x[i] = t / a[i*d+i]
	}
	return nil
}

// TestCholSolveBits checks the blocked factorization and the vector one by
// columns (cholSolveVec) against the one row at a time, bit for bit, and
// that all refuse the same matrices.
func TestCholSolveBits(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, d := range []int{1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33} {
		for trial := range 20 {
			g := make([]float64, d*d)
			for i := range d {
				for j := range d {
					g[i*d+j] = r.NormFloat64()
				}
			}
			a := make([]float64, d*d) // gᵀg + shift: SPD, or not when the shift is negative
			shift := 0.1
			if trial%5 == 4 {
				shift = -10
			}
			for i := range d {
				for j := range d {
					for k := range d {
						a[i*d+j] += g[k*d+i] * g[k*d+j]
					}
				}
				a[i*d+i] += shift
			}
			b := make([]float64, d)
			for i := range b {
				b[i] = r.NormFloat64()
			}
			a2, a3 := slices.Clone(a), slices.Clone(a)
			for i := range d { // cholSolveVec reads only the lower triangle
				for j := i + 1; j < d; j++ {
					a3[i*d+j] = math.NaN()
				}
			}
			got, want, vec := make([]float64, d), make([]float64, d), make([]float64, d)
			errG, errW := cholSolve(a, b, got, d), cholSolveReference(a2, b, want, d)
			if (errG == nil) != (errW == nil) || (errG == nil && !slices.Equal(got, want)) || !slices.Equal(a, a2) {
				t.Fatalf("d=%d trial %d: %v (%v), reference %v (%v)", d, trial, got, errG, want, errW)
			}
			lt := make([]float64, d*cholWidth(d))
			for i := range lt {
				lt[i] = math.Inf(1) // stale scratch must not matter
			}
			ok, errV := cholSolveVec(a3, b, vec, d, lt)
			if !ok {
				continue // no vector kernel on this CPU
			}
			if (errV == nil) != (errW == nil) || (errV == nil && !slices.Equal(vec, want)) {
				t.Fatalf("d=%d trial %d: vector %v (%v), reference %v (%v)", d, trial, vec, errV, want, errW)
			}
			for i := range d { // the factor left in the lower triangle
				for j := 0; j <= i && errV == nil; j++ {
					if math.Float64bits(a3[i*d+j]) != math.Float64bits(a2[i*d+j]) {
						t.Fatalf("d=%d trial %d: factor (%d,%d) %v, reference %v", d, trial, i, j, a3[i*d+j], a2[i*d+j])
					}
				}
			}
		}
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
