package train

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// randomModel has n items of dimension d; dup items repeat item 0's
// factors (exact ties).
func randomModel(d, n, dup int, seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 3))
	m := &Model{Dim: d, Items: make([]string, n), P: make([]float64, n*(d+1)), Lambda: 1, Unobserved: 0.05}
	for j := range n {
		m.Items[j] = fmt.Sprintf("i%05d", j)
		row := m.row(j)
		if j > 0 && j <= dup {
			copy(row, m.row(0))
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
				if reversed { // ties broken by another order than the model's
					keys = make([]int32, c.items)
					for j := range keys {
						keys[j] = int32(c.items - j)
					}
				}
				got := make([][]ranked, c.subjects)
				var mu sync.Mutex
				err := rankModel(context.Background(), m, c.subjects, c.k, keys, 2,
					func(_, i int, buf *scoreTask) {
						buf.rows = append(buf.rows, tasks[i].rows...)
						buf.exclude = append(buf.exclude, tasks[i].exclude...)
					},
					func(_, i int, top []ranked) error {
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
	report := func(b *testing.B) {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.Run("rank", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := rankModel(context.Background(), m, subjects, k, nil, 0,
				func(_, i int, buf *scoreTask) {
					buf.rows = append(buf.rows, tasks[i].rows...)
					buf.exclude = append(buf.exclude, tasks[i].exclude...)
				},
				func(int, int, []ranked) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("kernel", func(b *testing.B) {
		pan := newPanels(m)
		u := make([]float32, d*kernelRows)
		for i := range u {
			u[i] = 0.1
		}
		thr := [kernelRows]float32{}
		for i := range thr {
			thr[i] = float32(math.Inf(1))
		}
		b.SetBytes(int64(len(pan.v) * 4))
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
	b.Run("before", func(b *testing.B) {
		// The float64 path evaluation and recommendations took before:
		// solve, Score every item, exclude, topK, on 2 goroutines.
		solver := NewSolver(m)
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
