package mf

import (
	"context"
	"runtime"
	"slices"
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
	var solver *Solver
	if explain {
		solver = NewSolver(m)
	}
	bufs := make([][]Recommended, workers)
	toModel := itemIndex(d.Items, m.Items)
	return rankModel(context.Background(), m, len(subjects), k, nil, workers,
		func(_, e int, t *scoreTask) {
			for _, x := range d.Rows[subjects[e]] {
				if j := toModel[x.Item]; j >= 0 {
					x.Item = j
					t.rows = append(t.rows, x)
					t.exclude = append(t.exclude, j)
				}
			}
			slices.Sort(t.exclude)
		},
		func(w, e int, top []ranked) error {
			out := bufs[w][:0]
			for _, x := range top {
				out = append(out, Recommended{Item: x.item, Score: x.score})
			}
			bufs[w] = out
			if !explain || len(top) == 0 {
				return emit(e, out, nil)
			}
			var own []Interaction
			for _, x := range d.Rows[subjects[e]] {
				if j := toModel[x.Item]; j >= 0 {
					x.Item = j
					own = append(own, x)
				}
			}
			ex, err := solver.NewExplainer(own)
			if err != nil {
				return err
			}
			why := make([][]Contribution, len(top))
			for r, x := range top {
				why[r] = ex.Explain(int(x.item)).Because(n)
			}
			return emit(e, out, why)
		})
}
