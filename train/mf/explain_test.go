package mf

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// TestRecommendEachReasonsAreExplainers: the reasons RecommendEach gives
// with every recommendation are, to the last bit, those of a fresh
// Explainer of the subject's rows (NewExplainer, Explain, Because), on
// random models of odd and even d, histories with repeated items and items
// the model does not have, and subjects without a positive contribution.
func TestRecommendEachReasonsAreExplainers(t *testing.T) {
	for _, c := range []struct{ d, items, subjects, k, n int }{
		{1, 40, 30, 5, 3}, {5, 300, 70, 7, 3}, {13, 500, 110, 20, 2}, {32, 800, 100, 20, 3}, {8, 60, 20, 60, 4},
	} {
		t.Run(fmt.Sprintf("d%d_k%d", c.d, c.k), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.d), 11))
			m := randomModel(c.d, c.items, 2, uint64(c.d))
			d := &Data{Items: append([]string{"outside"}, m.Items...)}
			for s := range c.subjects {
				d.Subjects = append(d.Subjects, fmt.Sprintf("s%d", s))
				var rows []Interaction
				for range r.IntN(40) {
					j := int32(r.IntN(c.items + 1)) // 0: not in the model
					if len(rows) > 0 && r.IntN(5) == 0 {
						j = rows[r.IntN(len(rows))].Item // a repeat
					}
					rows = append(rows, Interaction{Item: j, Weight: float32(1 + 3*r.Float64())})
				}
				d.Rows = append(d.Rows, rows)
			}
			subjects := make([]int, c.subjects)
			for s := range subjects {
				subjects[s] = s
			}
			solver := NewSolver(m)
			var checked atomic.Int64
			err := RecommendEach(d, m, subjects, c.k, c.n, 2, true, func(e int, top []Recommended, because [][]Contribution) error {
				if len(because) != len(top) {
					return fmt.Errorf("subject %d: %d reasons for %d items", e, len(because), len(top))
				}
				var own []Interaction
				for _, x := range d.Rows[subjects[e]] {
					if x.Item > 0 {
						own = append(own, Interaction{Item: x.Item - 1, Weight: x.Weight})
					}
				}
				ex, err := solver.NewExplainer(own)
				if err != nil {
					return err
				}
				for i, x := range top {
					want := ex.Explain(int(x.Item)).Because(c.n)
					if !slices.Equal(because[i], want) || cap(because[i]) > c.n {
						return fmt.Errorf("subject %d, item %d: reasons %v (cap %d), want %v", e, x.Item, because[i], cap(because[i]), want)
					}
					checked.Add(int64(len(want)))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if checked.Load() == 0 {
				t.Error("no reason checked")
			}
		})
	}
}
