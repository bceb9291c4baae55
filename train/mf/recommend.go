package mf

import (
	"context"
	"runtime"
)

// Recommended is one entry of a subject's list: an item of the model and
// its score u·v_j + b_j.
type Recommended struct {
	Item  int32 // index into the model's Items
	Score float64
}

// RecommendEach ranks, for each subject d.Rows[subjects[e]], the k best
// items of m that the subject has not touched, by the released factors and
// the subject's own factor (solved from its own interactions only), and
// calls emit(e, top, because) with them, best first. Recommendations rank
// the model's items (the catalog's, or the DP-selected ones), never the
// items of d: a list must not depend on which items other subjects
// happened to touch (joint DP). With explain, because[r] are the reasons
// of top[r] (Explanation.Because with n); otherwise because is nil.
//
// emit is called on up to workers goroutines at once, once per subject;
// top belongs to the calling worker and is reused after emit returns,
// because belongs to emit.
func RecommendEach(d *Data, m *Model, subjects []int, k, n, workers int, explain bool, emit func(e int, top []Recommended, because [][]Contribution) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bufs := make([][]Recommended, workers)
	var explainers []*topExplainer
	if explain {
		explainers = make([]*topExplainer, workers)
		for w := range explainers {
			explainers[w] = newTopExplainer(m)
		}
	}
	toModel := itemIndex(d.Items, m.Items)
	// With explain the ranking keeps each subject's factor, which its
	// reasons need: the system is built and factored once.
	return rankModel(context.Background(), m, len(subjects), k, nil, workers, explain,
		func(_, e int, t *scoreTask) {
			for _, x := range d.Rows[subjects[e]] {
				if j := toModel[x.Item]; j >= 0 {
					x.Item = j
					t.rows = append(t.rows, x)
					t.exclude = append(t.exclude, j)
				}
			}
		},
		func(w, e int, top []ranked, sub solved) error {
			out := bufs[w][:0]
			for _, x := range top {
				out = append(out, Recommended{Item: x.item, Score: x.score})
			}
			bufs[w] = out
			if !explain || len(top) == 0 {
				return emit(e, out, nil)
			}
			return emit(e, out, explainers[w].because(sub.chol, sub.rows, top, n))
		})
}
