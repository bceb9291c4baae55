package mf

import (
	"cmp"
	"context"
	"errors"
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

// Ranker ranks the items of a Data for its subjects: by a model
// (ModelRanker) or by popularity (PopularityRanker).
type Ranker struct {
	model *Model
	// keys maps the model's items to the ranked items (-1: not among
	// them), and breaks ties: the lower ranked index first. toModel is
	// its inverse (-1: the model does not have the item). Both nil: the
	// same items.
	keys, toModel []int32
	pop           []float64 // popularity: the score of each item
}

// ModelRanker ranks the items (rows and top lists index them) by the
// model: the subject's factor is solved from its own rows on the model's
// items and the released item factors; items the model does not have are
// not ranked.
func ModelRanker(m *Model, items []string) Ranker {
	r := Ranker{model: m}
	if !slices.Equal(items, m.Items) {
		r.toModel = itemIndex(items, m.Items)
		r.keys = make([]int32, len(m.Items))
		for j := range r.keys {
			r.keys[j] = -1
		}
		for i, j := range r.toModel {
			if j >= 0 {
				r.keys[j] = int32(i)
			}
		}
	}
	return r
}

// PopularityRanker ranks items by how many training subjects touched them.
func PopularityRanker(train *Data) Ranker {
	pop := make([]float64, len(train.Items))
	for _, r := range train.Rows {
		for _, x := range r {
			pop[x.Item]++
		}
	}
	return Ranker{pop: pop}
}

// rankSubjects calls emit(w, i, top) with the k best items (best first,
// ties by the lower index, the subject's own rows excluded) of subject
// subjects[i], whose rows are rows(s); emit runs on worker w's goroutine
// and top is reused after it returns.
func (rk Ranker) rankSubjects(subjects []int, rows func(s int) []Interaction, k, workers int, emit func(w, i int, top []int32) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if rk.model == nil {
		return rk.rankPopular(subjects, rows, k, workers, emit)
	}
	tops := make([][]int32, workers)
	return rankModel(context.Background(), rk.model, len(subjects), k, rk.keys, workers, false,
		func(_, i int, t *scoreTask) {
			for _, x := range rows(subjects[i]) {
				if rk.toModel != nil {
					if x.Item = rk.toModel[x.Item]; x.Item < 0 {
						continue
					}
				}
				t.rows = append(t.rows, x)
				t.exclude = append(t.exclude, x.Item)
			}
		},
		func(w, i int, top []ranked, _ solved) error {
			tops[w] = tops[w][:0]
			for _, e := range top {
				tops[w] = append(tops[w], e.key)
			}
			return emit(w, i, tops[w])
		})
}

// rankPopular ranks by popularity: one order of the items, from which
// each subject takes the first k it has not touched.
func (rk Ranker) rankPopular(subjects []int, rows func(s int) []Interaction, k, workers int, emit func(w, i int, top []int32) error) error {
	order := make([]int32, len(rk.pop))
	for j := range order {
		order[j] = int32(j)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(rk.pop[b], rk.pop[a]) })
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := make([]int32, len(rk.pop)) // item -> 1 + the subject's position that touched it
			top := make([]int32, 0, k)
			for i := w; i < len(subjects); i += workers {
				for _, x := range rows(subjects[i]) {
					mark[x.Item] = int32(i + 1)
				}
				top = top[:0]
				for _, j := range order {
					if len(top) == k {
						break
					}
					if mark[j] != int32(i+1) {
						top = append(top, j)
					}
				}
				if err := emit(w, i, top); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Evaluate ranks all items for every subject with held-out items,
// excluding the subject's training items, and averages Recall@K (hits over
// min(K, held out)) and NDCG@K for K = 10 and 20.
func Evaluate(train *Data, test [][]int32, rank Ranker, workers int) (Metrics, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var subjects []int
	for s := range test {
		if len(test[s]) > 0 && len(train.Rows[s]) > 0 {
			subjects = append(subjects, s)
		}
	}
	// Each subject's terms, summed in subject order afterwards: the
	// metrics do not depend on which worker ranked whom.
	type terms struct{ r10, r20, n10, n20 float64 }
	per := make([]terms, len(subjects))
	seen := make([][]bool, workers)
	for w := range seen {
		seen[w] = make([]bool, len(train.Items))
	}
	idcg := func(k, held int) float64 {
		v := 0.0
		for i := range min(k, held) {
			v += 1 / math.Log2(float64(i)+2)
		}
		return v
	}
	err := rank.rankSubjects(subjects, func(s int) []Interaction { return train.Rows[s] }, 20, workers, func(w, i int, top []int32) error {
		held := test[subjects[i]]
		var dcg10, dcg20 float64
		hits10, hits20 := 0, 0
		for rnk, j := range top {
			seen[w][j] = true
			if slices.Contains(held, j) {
				g := 1 / math.Log2(float64(rnk)+2)
				dcg20 += g
				hits20++
				if rnk < 10 {
					dcg10 += g
					hits10++
				}
			}
		}
		nh := distinct(held)
		per[i] = terms{float64(hits10) / float64(min(10, nh)), float64(hits20) / float64(min(20, nh)), dcg10 / idcg(10, nh), dcg20 / idcg(20, nh)}
		return nil
	})
	if err != nil {
		return Metrics{}, err
	}
	m := Metrics{Subjects: len(subjects)}
	if m.Subjects == 0 {
		return m, nil
	}
	for _, t := range per {
		m.Recall10 += t.r10
		m.Recall20 += t.r20
		m.NDCG10 += t.n10
		m.NDCG20 += t.n20
	}
	n := float64(m.Subjects)
	m.Recall10 /= n
	m.Recall20 /= n
	m.NDCG10 /= n
	m.NDCG20 /= n
	covered := 0
	for j := range train.Items {
		for w := range seen {
			if seen[w][j] {
				covered++
				break
			}
		}
	}
	m.Coverage = float64(covered) / float64(len(train.Items))
	return m, nil
}

// distinct counts the distinct items of a short list.
func distinct(items []int32) int {
	n := 0
	for i, j := range items {
		if !slices.Contains(items[:i], j) {
			n++
		}
	}
	return n
}
