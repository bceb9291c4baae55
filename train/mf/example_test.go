package mf_test

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/veil-privacy/veil/train/mf"
)

// Fit a tiny model without privacy (ε = +Inf: no clipping, no noise, and
// with sampling rate 1 no random batches, so the run is deterministic)
// and recommend to a subject who bought two of the three garden items: the
// third.
func ExampleFit() {
	b := mf.NewBuilder()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for s := range 40 {
		shop := []string{"rake", "hose", "spade"} // half the subjects garden
		if s%2 == 1 {
			shop = []string{"flour", "yeast", "oven"} // the other half bake
		}
		for k, item := range shop {
			if (s/2+k)%3 != 0 { // each subject has two of its group's three items
				b.Add(fmt.Sprintf("s%02d", s), item, 1, t0.Add(time.Duration(k)*time.Hour))
			}
		}
	}
	b.Add("gardener", "rake", 1, t0)
	b.Add("gardener", "hose", 1, t0)
	d, err := b.Data()
	if err != nil {
		panic(err)
	}
	cfg := mf.DefaultConfig()
	cfg.Dim, cfg.Epsilon, cfg.SamplingRate, cfg.Epochs, cfg.Workers = 4, math.Inf(1), 1, 200, 1
	plan, err := cfg.MakePlan()
	if err != nil {
		panic(err)
	}
	m, st, err := mf.Fit(context.Background(), d, cfg, plan, mf.FitOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("items:", m.Items)
	fmt.Println("steps:", st.StepsDone)
	var gardener int
	for s, id := range d.Subjects {
		if id == "gardener" {
			gardener = s
		}
	}
	err = mf.RecommendEach(d, m, []int{gardener}, 1, 0, 1, false, func(_ int, top []mf.Recommended, _ [][]mf.Contribution) error {
		for r, x := range top {
			fmt.Printf("%d. %s\n", r+1, m.Items[x.Item])
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// items: [flour hose oven rake spade yeast]
	// steps: 200
	// 1. spade
}

// The solver finds one subject's factor from the released model and the
// subject's own interactions only: a device could run it.
func ExampleSolver() {
	m := &mf.Model{Dim: 2, Items: []string{"rake", "hose", "flour"}, Lambda: 1, Unobserved: 0.1,
		P: []float64{ // each item: two factors, then its bias
			1, 0, 0.1,
			0.8, 0.2, 0.1,
			0, 1, 0.2,
		}}
	rows := []mf.Interaction{{Item: 0, Weight: 3}} // the subject's own: it bought a rake
	u := make([]float64, m.Dim)
	if err := mf.NewSolver(m).Solve(rows, u, make([]float64, m.Dim*m.Dim), make([]float64, m.Dim)); err != nil {
		panic(err)
	}
	scores := make([]float64, len(m.Items))
	m.Score(u, scores)
	fmt.Printf("factor: [%.3f %.3f]\n", u[0], u[1])
	for j, s := range scores {
		fmt.Printf("%s: %.3f\n", m.Items[j], s)
	}
	// Output:
	// factor: [0.663 -0.030]
	// rake: 0.763
	// hose: 0.624
	// flour: 0.170
}

// An explanation splits a subject's score of an item into the parts its
// own items contribute and a remainder (the item's bias and the prior),
// which sum to the score.
func ExampleExplainer() {
	m := &mf.Model{Dim: 2, Items: []string{"rake", "hose", "spade", "flour"}, Lambda: 1, Unobserved: 0.1,
		P: []float64{
			1, 0, 0.1,
			0.8, 0.2, 0.1,
			0.9, 0.1, 0.05,
			0, 1, 0.2,
		}}
	rows := []mf.Interaction{{Item: 0, Weight: 2}, {Item: 1, Weight: 1}, {Item: 3, Weight: 1}}
	s := mf.NewSolver(m)
	ex, err := s.NewExplainer(rows)
	if err != nil {
		panic(err)
	}
	e := ex.Explain(2) // why spade?
	sum := e.Remainder
	for _, c := range e.Contributions {
		fmt.Printf("%s: %+.3f\n", m.Items[c.Item], c.Value)
		sum += c.Value
	}
	fmt.Printf("remainder: %+.3f\n", e.Remainder)
	u := make([]float64, m.Dim)
	if err := s.Solve(rows, u, make([]float64, m.Dim*m.Dim), make([]float64, m.Dim)); err != nil {
		panic(err)
	}
	scores := make([]float64, len(m.Items))
	m.Score(u, scores)
	fmt.Printf("sum %.6f, score %.6f\n", sum, scores[2])
	for _, c := range e.Because(2) {
		fmt.Printf("because of %s (%.0f%%)\n", m.Items[c.Item], 100*c.Value)
	}
	// Output:
	// rake: +0.435
	// hose: +0.180
	// flour: +0.024
	// remainder: +0.044
	// sum 0.683584, score 0.683584
	// because of rake (68%)
	// because of hose (28%)
}
