package mf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// TestRecommendEachReasonsAreExplainers: the reasons RecommendEach gives
// with every recommendation are, to the last bit, those of a fresh
// Explainer of the subject's rows (NewExplainer, Explain, Because), on
// random models of odd and even d, histories with repeated items and items
// the model does not have, and subjects without a positive contribution;
// with the vector kernels where the CPU has them, and without.
func TestRecommendEachReasonsAreExplainers(t *testing.T) {
	vector := haveAVX2
	defer func() { haveAVX2 = vector }()
	for _, c := range []struct {
		d, items, subjects, k, n int
		vector                   bool
	}{
		{1, 40, 30, 5, 3, vector}, {5, 300, 70, 7, 3, vector}, {13, 500, 110, 20, 2, vector}, {32, 800, 100, 20, 3, vector}, {8, 60, 20, 60, 4, vector},
		{5, 300, 70, 7, 3, false}, {32, 800, 100, 20, 3, false},
	} {
		t.Run(fmt.Sprintf("d%d_k%d_vector%v", c.d, c.k, c.vector), func(t *testing.T) {
			haveAVX2 = c.vector
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

// becauseBySign is Because as it was written first, testing the sign of
// every contribution: the reference for the edge values below.
func becauseBySign(cs []Contribution, n int) []Contribution {
	better := func(a, b Contribution) bool { return a.Value > b.Value || (a.Value == b.Value && a.Item < b.Item) }
	pos := 0.0
	top := make([]Contribution, 0, n)
	for _, c := range cs {
		if c.Value <= 0 {
			continue
		}
		pos += c.Value
		switch {
		case len(top) < n:
			top = append(top, c)
		case n > 0 && better(c, top[n-1]):
			top[n-1] = c
		default:
			continue
		}
		for i := len(top) - 1; i > 0 && better(top[i], top[i-1]); i-- {
			top[i], top[i-1] = top[i-1], top[i]
		}
	}
	for k := range top {
		top[k].Value /= pos
	}
	return top
}

// TestBecauseEdgeValues: Because gives the reference's reasons and shares
// bit for bit with ties, ±0, infinities, subnormals and NaN among the
// contributions.
func TestBecauseEdgeValues(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, 1, -1, 2, 5e-324, math.Inf(1), math.Inf(-1), math.NaN(), 0.3, 1e300, 1e300}
	r := rand.New(rand.NewPCG(9, 9))
	for trial := range 3000 {
		var ex Explanation
		for range r.IntN(12) {
			v := vals[r.IntN(len(vals))]
			if trial%2 == 0 {
				v = r.NormFloat64()
			}
			ex.Contributions = append(ex.Contributions, Contribution{Item: int32(r.IntN(20)), Value: v})
		}
		n := r.IntN(5)
		got, want := ex.Because(n), becauseBySign(ex.Contributions, n)
		same := len(got) == len(want)
		for k := 0; same && k < len(got); k++ {
			same = got[k].Item == want[k].Item && math.Float64bits(got[k].Value) == math.Float64bits(want[k].Value)
		}
		if !same {
			t.Fatalf("trial %d, n %d, %v: %v, want %v", trial, n, ex.Contributions, got, want)
		}
	}
}

// TestCholSolveManyBits: cholSolveMany gives every right-hand side the
// bits of cholSolveFactored alone, for d from 1 to 40 and 1 to 19 sides
// (the vector kernel's eight, the four interleaved, the rest), with the
// vector kernel and without.
func TestCholSolveManyBits(t *testing.T) {
	vector := haveAVX2
	defer func() { haveAVX2 = vector }()
	r := rand.New(rand.NewPCG(3, 3))
	for d := 1; d <= 40; d++ {
		// A = B Bᵀ + I, factored.
		a := make([]float64, d*d)
		b := make([]float64, d*d)
		for i := range b {
			b[i] = r.NormFloat64()
		}
		for i := range d {
			for j := range d {
				for q := range d {
					a[i*d+j] += b[i*d+q] * b[j*d+q]
				}
			}
			a[i*d+i]++
		}
		if err := cholFactor(a, d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []int{1, 3, 4, 7, 8, 9, 12, 16, 19} {
			xs := make([]float64, k*d)
			for i := range xs {
				xs[i] = r.NormFloat64() * 10
			}
			want := make([]float64, k*d)
			for c := range k {
				cholSolveFactored(a, xs[c*d:(c+1)*d], want[c*d:(c+1)*d], d)
			}
			for _, v := range []bool{vector, false} {
				haveAVX2 = v
				got := slices.Clone(xs)
				cholSolveMany(a, got, make([]float64, 8*d), d)
				for i := range got {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("d %d, %d sides, vector %v: side %d coordinate %d: %v, want %v", d, k, v, i/d, i%d, got[i], want[i])
					}
				}
			}
		}
	}
}
