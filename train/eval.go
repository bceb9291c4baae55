package train

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Metrics are ranking metrics over held-out interactions.
type Metrics struct {
	Subjects int     `json:"subjects_evaluated"`
	Recall10 float64 `json:"recall_at_10"`
	Recall20 float64 `json:"recall_at_20"`
	NDCG10   float64 `json:"ndcg_at_10"`
	NDCG20   float64 `json:"ndcg_at_20"`
	Coverage float64 `json:"catalog_coverage_at_20"` // share of items in anyone's top 20
}

// Ranker scores every item for a subject with these training rows.
type Ranker func(rows []Interaction, scores []float64, scratch *rankScratch) error

type rankScratch struct {
	u, a, rhs, model []float64
	rows             []Interaction
}

// ModelRanker ranks the items (rows and scores index them) by the model:
// the subject's factor is solved from its own rows on the model's items
// and the released item factors; items the model does not have score -∞.
func ModelRanker(m *Model, items []string) Ranker {
	s := NewSolver(m)
	var index []int32 // nil: the same items
	if !slices.Equal(items, m.Items) {
		index = itemIndex(items, m.Items)
	}
	return func(rows []Interaction, scores []float64, sc *rankScratch) error {
		if sc.u == nil {
			sc.u, sc.a, sc.rhs = make([]float64, m.Dim), make([]float64, m.Dim*m.Dim), make([]float64, m.Dim)
			sc.model = make([]float64, len(m.Items))
		}
		if index == nil {
			if err := s.Solve(rows, sc.u, sc.a, sc.rhs); err != nil {
				return err
			}
			m.Score(sc.u, scores)
			return nil
		}
		sc.rows = sc.rows[:0]
		for _, x := range rows {
			if k := index[x.Item]; k >= 0 {
				x.Item = k
				sc.rows = append(sc.rows, x)
			}
		}
		if err := s.Solve(sc.rows, sc.u, sc.a, sc.rhs); err != nil {
			return err
		}
		m.Score(sc.u, sc.model)
		for j, k := range index {
			if k < 0 {
				scores[j] = math.Inf(-1)
			} else {
				scores[j] = sc.model[k]
			}
		}
		return nil
	}
}

// PopularityRanker ranks items by how many training subjects touched them.
func PopularityRanker(train *Data) Ranker {
	pop := make([]float64, len(train.Items))
	for _, r := range train.Rows {
		for _, x := range r {
			pop[x.Item]++
		}
	}
	return func(_ []Interaction, scores []float64, _ *rankScratch) error {
		copy(scores, pop)
		return nil
	}
}

// Evaluate ranks all items for every subject with held-out items,
// excluding the subject's training items, and averages Recall@K (hits over
// min(K, held out)) and NDCG@K for K = 10 and 20.
func Evaluate(train *Data, test [][]int32, rank Ranker, workers int) (Metrics, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type part struct {
		n                  int
		r10, r20, n10, n20 float64
		seen               []bool
		err                error
	}
	parts := make([]part, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[wk]
			p.seen = make([]bool, len(train.Items))
			scores := make([]float64, len(train.Items))
			var sc rankScratch
			idx := make([]int32, 0, 20)
			for s := wk; s < len(test); s += workers {
				if len(test[s]) == 0 || len(train.Rows[s]) == 0 {
					continue
				}
				if err := rank(train.Rows[s], scores, &sc); err != nil {
					p.err = err
					return
				}
				for _, x := range train.Rows[s] {
					scores[x.Item] = math.Inf(-1)
				}
				idx = topK(scores, 20, idx[:0])
				held := map[int32]bool{}
				for _, j := range test[s] {
					held[j] = true
				}
				var dcg10, dcg20 float64
				hits10, hits20 := 0, 0
				for rnk, j := range idx {
					p.seen[j] = true
					if held[j] {
						g := 1 / math.Log2(float64(rnk)+2)
						dcg20 += g
						hits20++
						if rnk < 10 {
							dcg10 += g
							hits10++
						}
					}
				}
				idcg := func(k int) float64 {
					v := 0.0
					for i := range min(k, len(held)) {
						v += 1 / math.Log2(float64(i)+2)
					}
					return v
				}
				p.n++
				p.r10 += float64(hits10) / float64(min(10, len(held)))
				p.r20 += float64(hits20) / float64(min(20, len(held)))
				p.n10 += dcg10 / idcg(10)
				p.n20 += dcg20 / idcg(20)
			}
		}()
	}
	wg.Wait()
	var m Metrics
	seen := make([]bool, len(train.Items))
	for _, p := range parts {
		if p.err != nil {
			return Metrics{}, p.err
		}
		m.Subjects += p.n
		m.Recall10 += p.r10
		m.Recall20 += p.r20
		m.NDCG10 += p.n10
		m.NDCG20 += p.n20
		for j, v := range p.seen {
			seen[j] = seen[j] || v
		}
	}
	if m.Subjects == 0 {
		return m, nil
	}
	n := float64(m.Subjects)
	m.Recall10 /= n
	m.Recall20 /= n
	m.NDCG10 /= n
	m.NDCG20 /= n
	covered := 0
	for _, v := range seen {
		if v {
			covered++
		}
	}
	m.Coverage = float64(covered) / float64(len(seen))
	return m, nil
}

// topK returns the indices of the k largest scores, best first (ties by
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
