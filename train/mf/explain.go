package mf

import (
	"slices"
)

// Why a recommendation: the subject's factor is the closed-form solution
// of its own implicit-feedback objective (Solver.Solve),
//
//	A u = r,  A = w0·VᵀV + λI + Σ_j (c_j - w0)·v_j v_jᵀ,
//	          r = -w0·Vᵀb + Σ_j (c_j·(1-b_j) + w0·b_j)·v_j,
//
// over the subject's interactions j (confidence c_j, released factor v_j
// and bias b_j) and the released factors V and biases b of all items. A is
// symmetric, so with x_i = A⁻¹ v_i the score of item i is
//
//	u·v_i + b_i = Σ_j (c_j·(1-b_j) + w0·b_j)·(v_j·x_i)  +  (b_i - w0·(Vᵀb)·x_i),
//
// exactly: the first sum is over the subject's own items (item j's
// contribution; Hu, Koren and Volinsky 2008, section 5), the second term,
// the remainder, holds the item's own bias and the prior of all items and
// depends on no interaction. Everything in it is the subject's own data
// and the released model: explaining a recommendation releases nothing
// that the recommendation did not (joint DP).

// Contribution is one item of a subject's history and its part of a
// score, in score units.
type Contribution struct {
	Item  int32 // the model's index
	Value float64
}

// Explanation decomposes the score of one item for one subject: the
// contributions of the subject's items (each item once, in the order of
// its first interaction) plus Remainder is Score up to rounding.
type Explanation struct {
	Score         float64
	Contributions []Contribution
	Remainder     float64
}

// Explainer explains scores for one subject. It holds the factored system
// of the subject's solve; it is not safe for concurrent use.
type Explainer struct {
	m     *Model
	s     *Solver
	items []int32   // the subject's distinct items
	coef  []float64 // their summed rhs coefficients
	chol  []float64 // Cholesky factor of A (lower triangle)
	x, y  []float64 // scratch of d
}

// NewExplainer factors the subject's system for rows (in the model's
// items); it fails like Solve when the system is not positive definite.
func (s *Solver) NewExplainer(rows []Interaction) (*Explainer, error) {
	m, d := s.m, s.m.Dim
	e := &Explainer{m: m, s: s, chol: slices.Clone(s.gram), x: make([]float64, d), y: make([]float64, d)}
	for i := range d {
		e.chol[i*d+i] += m.Lambda
	}
	w0 := m.Unobserved
	pos := make(map[int32]int, len(rows))
	for _, x := range rows {
		r := m.Row(int(x.Item))
		c := float64(x.Weight)
		k, ok := pos[x.Item]
		if !ok {
			k = len(e.items)
			pos[x.Item] = k
			e.items = append(e.items, x.Item)
			e.coef = append(e.coef, 0)
		}
		e.coef[k] += c*(1-r[d]) + w0*r[d]
	}
	s.addOuter(e.chol, rows) // A exactly as Solve builds it
	if err := cholFactor(e.chol, d); err != nil {
		return nil, err
	}
	return e, nil
}

// Explain decomposes the score of the model's item i.
func (e *Explainer) Explain(i int) Explanation {
	m, d := e.m, e.m.Dim
	vi := m.Row(i)
	cholSolveFactored(e.chol, vi[:d], e.x, d)
	ex := Explanation{Contributions: make([]Contribution, len(e.items))}
	sum := 0.0
	for k, j := range e.items {
		v := e.coef[k] * dot(m.Row(int(j))[:d], e.x)
		ex.Contributions[k] = Contribution{Item: j, Value: v}
		sum += v
	}
	ex.Remainder = vi[d] - dot(e.s.vtb, e.x)
	ex.Score = sum + ex.Remainder
	return ex
}

// Because returns the subject's items that pushed the score up most, at
// most n, largest first, with their shares: each one's contribution over
// the sum of all positive contributions of the subject's items, so that a
// share says how much of what the history adds in favour of the item came
// from that item of it. Items that lowered the score are never reasons.
func (ex Explanation) Because(n int) []Contribution {
	// better orders reasons: the larger contribution first, then the
	// lower item.
	better := func(a, b Contribution) bool { return a.Value > b.Value || (a.Value == b.Value && a.Item < b.Item) }
	pos := 0.0
	top := make([]Contribution, 0, n) // the n best so far, in order
	for _, c := range ex.Contributions {
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

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
