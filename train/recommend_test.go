package train

import (
	"testing"

	"github.com/veil-privacy/veil/train/mf"
)

// TestRecommendationsRankTheModelsItems: a subject's list ranks every item
// of the released model (the catalog's), also one that nobody touched in
// the window; ranking only the data's items would let one subject's list
// reveal which items other subjects touched.
func TestRecommendationsRankTheModelsItems(t *testing.T) {
	m := &mf.Model{Dim: 1, Items: []string{"a", "b", "untouched"}, Lambda: 1, Unobserved: 0.05,
		P: []float64{0.1, 0.1, 0.1, 0.2, 0.1, 0.9}} // item j: factor, bias
	d := &mf.Data{Subjects: []string{"s"}, Items: []string{"a", "b"}, Rows: [][]mf.Interaction{{{Item: 0, Weight: 1}}}}
	recs, _, err := recommendFor(d, m, []int{0}, 2, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ItemID != "untouched" || recs[1].ItemID != "b" {
		t.Errorf("recommendations %+v, want untouched then b (a is the subject's own)", recs)
	}
}
