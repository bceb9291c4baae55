package train

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/train/mf"
)

// explainModel is a random model with random biases in [0, 1).
func explainModel(d, n int, seed uint64) *mf.Model {
	r := rand.New(rand.NewPCG(seed, 25))
	m := &mf.Model{Dim: d, Items: make([]string, n), P: make([]float64, n*(d+1)), Lambda: 0.5 + r.Float64(), Unobserved: 0.01 + 0.2*r.Float64()}
	for j := range n {
		m.Items[j] = fmt.Sprintf("i%04d", j)
		row := m.Row(j)
		for q := range d {
			row[q] = r.NormFloat64() * 0.4
		}
		row[d] = r.Float64()
	}
	return m
}

// TestExplainSumsToScore: on random models and histories (repeated items
// included), the contributions of the subject's items plus the remainder
// are the score of Solve's factor, to 1e-9 relative: both are the same
// d×d solve in float64 (d ≤ 16, well-conditioned by λ ≥ 0.5), so they
// differ by rounding of order 1e-13, and a wrong term (a missing w0·b_j,
// the prior's -w0·Vᵀb) moves the sum by more than 1e-3.
func TestExplainSumsToScore(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		d, n := 1+r.IntN(16), 5+r.IntN(60)
		m := explainModel(d, n, seed)
		var rows []mf.Interaction
		touched := map[int32]bool{}
		for range r.IntN(12) {
			j := int32(r.IntN(n))
			rows = append(rows, mf.Interaction{Item: j, Weight: float32(1 + 3*r.Float64())})
			touched[j] = true
		}
		s := mf.NewSolver(m)
		u := make([]float64, d)
		if err := s.Solve(rows, u, make([]float64, d*d), make([]float64, d)); err != nil {
			t.Fatal(err)
		}
		scores := make([]float64, n)
		m.Score(u, scores)
		ex, err := s.NewExplainer(rows)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			e := ex.Explain(i)
			sum := e.Remainder
			for _, c := range e.Contributions {
				if !touched[c.Item] {
					t.Fatalf("seed %d: item %d explained by %d, which the subject did not touch", seed, i, c.Item)
				}
				sum += c.Value
			}
			if math.Abs(sum-scores[i]) > 1e-9*(1+math.Abs(scores[i])) {
				t.Errorf("seed %d, d %d, item %d: contributions + remainder %.15g, score %.15g", seed, d, i, sum, scores[i])
			}
			if len(e.Contributions) != len(touched) {
				t.Errorf("seed %d: %d contributions for %d distinct items", seed, len(e.Contributions), len(touched))
			}
			b := e.Because(BecauseItems)
			total := 0.0
			for k, c := range b {
				if !touched[c.Item] || !(c.Value > 0 && c.Value <= 1) || (k > 0 && c.Value > b[k-1].Value) {
					t.Fatalf("seed %d: because %+v", seed, b)
				}
				total += c.Value
			}
			if total > 1+1e-12 {
				t.Errorf("seed %d: shares sum to %v", seed, total)
			}
		}
	}
}

// TestRecommendationsExplainedByOwnItems: through the job's path, every
// reason of every recommendation is an item the subject touched, and a
// subject without interactions in the model gets no reasons.
func TestRecommendationsExplainedByOwnItems(t *testing.T) {
	m := explainModel(4, 30, 3)
	d := &mf.Data{Subjects: []string{"a", "b", "c"}, Items: append([]string{"outside"}, m.Items...), Rows: [][]mf.Interaction{
		{{Item: 1, Weight: 1}, {Item: 5, Weight: 2}, {Item: 9, Weight: 1}},
		{{Item: 0, Weight: 1}, {Item: 2, Weight: 1}},
		{{Item: 30, Weight: 3}},
	}}
	recs, because, err := recommendFor(d, m, []int{0, 1, 2}, 5, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(because) != recs.Len() || recs.Len() == 0 {
		t.Fatalf("%d recommendations, %d reasons", recs.Len(), len(because))
	}
	own := map[string]map[string]bool{"a": {"i0000": true, "i0004": true, "i0008": true}, "b": {"i0001": true}, "c": {"i0029": true}}
	rows := explained(recs, because)
	for _, r := range rows {
		if len(r.BecauseItems) != len(r.BecauseShares) || len(r.BecauseItems) > BecauseItems {
			t.Fatalf("%+v", r)
		}
		for _, sh := range r.BecauseShares {
			// Whole percent: a reader's figure, not the weights behind it.
			if sh < 0 || sh > 1 || sh != math.Round(sh*100)/100 {
				t.Errorf("%s's recommendation %s: share %v is not a whole percent", r.SubjectID, r.ItemID, sh)
			}
		}
		for _, it := range r.BecauseItems {
			if !own[r.SubjectID][it] {
				t.Errorf("%s's recommendation %s explained by %s, not its own item", r.SubjectID, r.ItemID, it)
			}
		}
	}
}

// TestRecommendExplained: veil train mf's rows carry the same reasons as
// the job's path.
func TestRecommendExplained(t *testing.T) {
	m := explainModel(4, 30, 5)
	d := &mf.Data{Subjects: []string{"a", "b"}, Items: m.Items, Rows: [][]mf.Interaction{
		{{Item: 1, Weight: 1}, {Item: 5, Weight: 2}}, {{Item: 7, Weight: 1}}}}
	rows, err := RecommendExplained(d, m, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs, because, err := recommendFor(d, m, []int{0, 1}, 4, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	want := explained(recs, because)
	if len(rows) != 8 || len(want) != len(rows) {
		t.Fatalf("%d rows, want 8", len(rows))
	}
	reasons := 0
	for i := range rows {
		if rows[i].ItemID != want[i].ItemID || !slices.Equal(rows[i].BecauseItems, want[i].BecauseItems) || !slices.Equal(rows[i].BecauseShares, want[i].BecauseShares) {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
		reasons += len(rows[i].BecauseItems)
	}
	// A recommendation that no item of the history raised has no reason
	// (it is there for the remainder: the item's bias and the prior).
	if reasons == 0 {
		t.Error("no recommendation has a reason")
	}
}

// TestBecauseMatchesSort: the reasons picked in one pass are those of
// sorting every positive contribution (larger first, then the lower item),
// with the same shares, and hold no more than n entries.
func TestBecauseMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for trial := range 500 {
		ex := mf.Explanation{}
		for j := range r.IntN(40) {
			v := r.NormFloat64()
			if trial%3 == 0 {
				v = float64(r.IntN(3)) - 0.5 // ties
			}
			ex.Contributions = append(ex.Contributions, mf.Contribution{Item: int32(j*7%41 + 1), Value: v})
		}
		n := r.IntN(5)
		var want []mf.Contribution
		pos := 0.0
		for _, c := range ex.Contributions {
			if c.Value > 0 {
				pos += c.Value
				want = append(want, c)
			}
		}
		slices.SortStableFunc(want, func(a, b mf.Contribution) int {
			return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Item, b.Item))
		})
		want = want[:min(n, len(want))]
		for k := range want {
			want[k].Value /= pos
		}
		got := ex.Because(n)
		if !slices.Equal(got, want) || cap(got) > n {
			t.Fatalf("trial %d, n %d: %v, want %v", trial, n, got, want)
		}
	}
}

// TestRecommendForShortLists: when a subject's list is shorter than k (a
// small catalog less the subject's own items) the lists still follow one
// another, ranks 1, 2, ... per subject, each row with its own reasons, as
// RecommendEach gave them.
func TestRecommendForShortLists(t *testing.T) {
	m := explainModel(4, 6, 3)
	d := &mf.Data{Subjects: []string{"a", "b", "c"}, Items: m.Items, Rows: [][]mf.Interaction{
		{{Item: 1, Weight: 1}, {Item: 2, Weight: 2}, {Item: 3, Weight: 1}},
		{{Item: 0, Weight: 1}},
		{{Item: 4, Weight: 3}, {Item: 5, Weight: 1}},
	}}
	const k = 5
	recs, because, err := recommendFor(d, m, []int{0, 1, 2}, k, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	var want []dataset.Recommendation
	var wantWhy [][]mf.Contribution
	for s := range d.Subjects {
		err := mf.RecommendEach(d, m, []int{s}, k, BecauseItems, 1, true, func(_ int, top []mf.Recommended, why [][]mf.Contribution) error {
			for r, x := range top {
				want = append(want, dataset.Recommendation{SubjectID: d.Subjects[s], Rank: int64(r + 1), ItemID: m.Items[x.Item], Score: x.Score})
			}
			wantWhy = append(wantWhy, why...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 3+5+4 || !reflect.DeepEqual(recs.all(), want) || !reflect.DeepEqual(because, wantWhy) {
		t.Fatalf("got %v\n%v\nwant %v\n%v", recs.all(), because, want, wantWhy)
	}
}
