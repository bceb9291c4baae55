package train

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/train/mf"
)

func TestGini(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want float64
	}{{[]float64{1, 1, 1, 1}, 0}, {[]float64{0, 0, 0, 4}, 0.75}, {[]float64{1, 2, 3, 4}, 0.25}, {nil, 0}} {
		if g := gini(c.v); math.Abs(g-c.want) > 1e-12 {
			t.Errorf("gini(%v) = %v, want %v", c.v, g, c.want)
		}
	}
}

// Recommendations that all point at the most popular item are found
// concentrated; spread ones are not.
func TestExposureFindsConcentration(t *testing.T) {
	b := mf.NewBuilder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := range 100 {
		for k := range 5 {
			b.Add("s"+string(rune('a'+s%26))+string(rune('a'+s/26)), "i"+string(rune('a'+(s+k)%20)), 1, t0)
		}
	}
	d, _ := b.Data()
	same := make([]int32, 500)
	e := exposure(interactionsPerItem(d, d.Items), same)
	if e.Gini < 0.9 || e.Coverage != 1.0/20 || !strings.Contains(e.warning(ExposureConfig{MaxGini: 0.9}), "concentrated") {
		t.Errorf("concentrated: %+v", e)
	}
	spread := make([]int32, 500)
	for i := range spread {
		spread[i] = int32(i % 20)
	}
	e = exposure(interactionsPerItem(d, d.Items), spread)
	if e.Gini > 0.01 || e.Coverage != 1 || e.warning(ExposureConfig{MaxGini: 0.9}) != "" {
		t.Errorf("spread: %+v", e)
	}
}

// TestInteractionsPerItem counts interactions by the model's items as
// d.OnItems would hold them: other items left out, the model's order.
func TestInteractionsPerItem(t *testing.T) {
	d := &mf.Data{Subjects: []string{"a", "b"}, Items: []string{"x", "y", "z"},
		Rows: [][]mf.Interaction{{{Item: 0}, {Item: 2}, {Item: 2}}, {{Item: 1}, {Item: 2}}}}
	items := []string{"z", "w", "x"}
	got := interactionsPerItem(d, items)
	want := make([]float64, len(items))
	for _, rows := range d.OnItems(items).Rows {
		for _, x := range rows {
			want[x.Item]++
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(got, []float64{3, 0, 1}) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
