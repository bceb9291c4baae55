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
	return appendBecause(make([]Contribution, 0, n), ex.Contributions, n)
}

// appendBecause appends Because(n) of the contributions cs to dst, which
// has room for n more.
func appendBecause(dst, cs []Contribution, n int) []Contribution {
	// better orders reasons: the larger contribution first, then the
	// lower item.
	better := func(a, b Contribution) bool { return a.Value > b.Value || (a.Value == b.Value && a.Item < b.Item) }
	pos := 0.0
	top := dst[len(dst):len(dst)] // the n best so far, in order
	for _, c := range cs {
		// pos adds what is positive and +0 for the rest (-0 included; a
		// NaN, which is not ≤ 0, is added as it always was), so that the
		// sign, the one unpredictable branch, is tested only for the few
		// contributions that would enter the list.
		pos += max(c.Value, 0)
		switch {
		case len(top) == n && (n == 0 || !better(c, top[n-1])):
			continue // the usual case once n reasons were found
		case c.Value <= 0:
			continue
		case len(top) < n:
			top = append(top, c)
		default:
			top[n-1] = c
		}
		for i := len(top) - 1; i > 0 && better(top[i], top[i-1]); i-- {
			top[i], top[i-1] = top[i-1], top[i]
		}
	}
	for k := range top {
		top[k].Value /= pos
	}
	return dst[:len(dst)+len(top)]
}

// topExplainer gives the reasons of a subject's whole top list at once,
// from the Cholesky factor its Solve left (the same system NewExplainer
// builds and factors, so it is not factored twice): X = A⁻¹[v_i1 … v_ik]
// by one triangular solve of k right-hand sides, then the contributions
// as one product of the subject's items and X. Every value takes the
// operations of Explain in the same order (the solve of cholSolveFactored
// per column, dot's sum per entry), so the reasons are Because's to the
// last bit; the columns are only interleaved, four at a time, so that the
// processor overlaps their chains. One per worker; it is not safe for
// concurrent use.
type topExplainer struct {
	m     *Model
	slot  []int32   // the model's item -> 1 + its place in items; 0: none
	items []int32   // the subject's distinct items, in the order of their first interaction
	coef  []float64 // their summed rhs coefficients
	x     []float64 // k × d: row r is A⁻¹ v of the top list's item r
	xt    []float64 // d × 4: four rows of x side by side
	xt8   []float64 // d × 8: cholSolveMany's scratch
	c     []Contribution
}

func newTopExplainer(m *Model) *topExplainer {
	return &topExplainer{m: m, slot: make([]int32, len(m.Items)), xt: make([]float64, 4*m.Dim), xt8: make([]float64, 8*m.Dim)}
}

// because returns the reasons (Because with n) of each item of top for the
// subject with these rows (in the model's items), whose system's Cholesky
// factor is chol. The slices are new and belong to the caller.
func (e *topExplainer) because(chol []float64, rows []Interaction, top []ranked, n int) [][]Contribution {
	m, d, w0 := e.m, e.m.Dim, e.m.Unobserved
	e.items, e.coef = e.items[:0], e.coef[:0]
	for _, x := range rows {
		r := m.Row(int(x.Item))
		c := float64(x.Weight)
		k := e.slot[x.Item] - 1
		if k < 0 {
			k = int32(len(e.items))
			e.slot[x.Item] = k + 1
			e.items = append(e.items, x.Item)
			e.coef = append(e.coef, 0)
		}
		e.coef[k] += c*(1-r[d]) + w0*r[d]
	}
	for _, j := range e.items {
		e.slot[j] = 0
	}
	nt, ni := len(top), len(e.items)
	e.x = slices.Grow(e.x[:0], nt*d)[:nt*d]
	for t, x := range top {
		copy(e.x[t*d:(t+1)*d], m.Row(int(x.item))[:d])
	}
	cholSolveMany(chol, e.x, e.xt8, d)
	// c holds the contributions of top item t at c[t·ni:][:ni].
	e.c = slices.Grow(e.c[:0], nt*ni)[:nt*ni]
	t := 0
	for ; t+4 <= nt; t += 4 {
		x0, x1, x2, x3 := e.x[t*d:(t+1)*d], e.x[(t+1)*d:(t+2)*d], e.x[(t+2)*d:(t+3)*d], e.x[(t+3)*d:(t+4)*d]
		// Four items of the subject against the four of the list in one
		// vector kernel (xt holds the four columns side by side), then
		// two at a time: independent sums, each in dot's order.
		xt := e.xt[:4*d]
		for q := range d {
			xt[4*q], xt[4*q+1], xt[4*q+2], xt[4*q+3] = x0[q], x1[q], x2[q], x3[q]
		}
		k := 0
		for ; k+4 <= ni; k += 4 {
			var sum [16]float64
			v := e.items[k : k+4]
			if !dot4x4(&sum, m.Row(int(v[0])), m.Row(int(v[1])), m.Row(int(v[2])), m.Row(int(v[3])), xt, d) {
				break
			}
			for c := range 4 {
				ct := e.c[(t+c)*ni+k : (t+c)*ni+k+4]
				for i, j := range v {
					ct[i] = Contribution{Item: j, Value: e.coef[k+i] * sum[4*i+c]}
				}
			}
		}
		for ; k+2 <= ni; k += 2 {
			ja, jb := e.items[k], e.items[k+1]
			va, vb := m.Row(int(ja))[:d], m.Row(int(jb))[:d]
			vb, x0, x1, x2, x3 := vb[:len(va)], x0[:len(va)], x1[:len(va)], x2[:len(va)], x3[:len(va)]
			var a0, a1, a2, a3, b0, b1, b2, b3 float64
			for q, p := range va {
				o := vb[q]
				y0, y1, y2, y3 := x0[q], x1[q], x2[q], x3[q]
				a0 += p * y0
				a1 += p * y1
				a2 += p * y2
				a3 += p * y3
				b0 += o * y0
				b1 += o * y1
				b2 += o * y2
				b3 += o * y3
			}
			ca, cb := e.coef[k], e.coef[k+1]
			c0, c1, c2, c3 := e.c[t*ni:(t+1)*ni], e.c[(t+1)*ni:(t+2)*ni], e.c[(t+2)*ni:(t+3)*ni], e.c[(t+3)*ni:(t+4)*ni]
			c0[k], c0[k+1] = Contribution{Item: ja, Value: ca * a0}, Contribution{Item: jb, Value: cb * b0}
			c1[k], c1[k+1] = Contribution{Item: ja, Value: ca * a1}, Contribution{Item: jb, Value: cb * b1}
			c2[k], c2[k+1] = Contribution{Item: ja, Value: ca * a2}, Contribution{Item: jb, Value: cb * b2}
			c3[k], c3[k+1] = Contribution{Item: ja, Value: ca * a3}, Contribution{Item: jb, Value: cb * b3}
		}
		for ; k < ni; k++ {
			j := e.items[k]
			v := m.Row(int(j))[:d]
			x0, x1, x2, x3 := x0[:len(v)], x1[:len(v)], x2[:len(v)], x3[:len(v)]
			var s0, s1, s2, s3 float64
			for q, p := range v {
				s0 += p * x0[q]
				s1 += p * x1[q]
				s2 += p * x2[q]
				s3 += p * x3[q]
			}
			ck := e.coef[k]
			e.c[t*ni+k] = Contribution{Item: j, Value: ck * s0}
			e.c[(t+1)*ni+k] = Contribution{Item: j, Value: ck * s1}
			e.c[(t+2)*ni+k] = Contribution{Item: j, Value: ck * s2}
			e.c[(t+3)*ni+k] = Contribution{Item: j, Value: ck * s3}
		}
	}
	for ; t < nt; t++ {
		xt := e.x[t*d : (t+1)*d]
		for k, j := range e.items {
			e.c[t*ni+k] = Contribution{Item: j, Value: e.coef[k] * dot(m.Row(int(j))[:d], xt)}
		}
	}
	why := make([][]Contribution, nt)
	all := make([]Contribution, 0, nt*n)
	for t := range nt {
		lo := len(all)
		all = appendBecause(all, e.c[t*ni:(t+1)*ni], n)
		why[t] = all[lo:len(all):len(all)]
	}
	return why
}

// cholSolveMany solves L Lᵀ x = b in place for each row b of xs (k × d),
// L the factor of cholFactor: each row gets cholSolveFactored's
// operations in its order, eight rows at a time in the vector kernel
// (xt8, d×8, is its scratch), the rest four rows interleaved.
func cholSolveMany(l, xs, xt8 []float64, d int) {
	k := len(xs) / d
	r := 0
	for ; r+8 <= k; r += 8 {
		rows := xs[r*d : (r+8)*d]
		for c := range 8 {
			for q, v := range rows[c*d : (c+1)*d] {
				xt8[8*q+c] = v
			}
		}
		if !cholSolve8(l, xt8, d) {
			break
		}
		for c := range 8 {
			x := rows[c*d : (c+1)*d]
			for q := range x {
				x[q] = xt8[8*q+c]
			}
		}
	}
	for ; r+4 <= k; r += 4 {
		x0, x1, x2, x3 := xs[r*d:(r+1)*d], xs[(r+1)*d:(r+2)*d], xs[(r+2)*d:(r+3)*d], xs[(r+3)*d:(r+4)*d]
		for i := range d {
			t0, t1, t2, t3 := x0[i], x1[i], x2[i], x3[i]
			li := l[i*d : i*d+i]
			for k, v := range li {
				t0 -= v * x0[k]
				t1 -= v * x1[k]
				t2 -= v * x2[k]
				t3 -= v * x3[k]
			}
			p := l[i*d+i]
			x0[i], x1[i], x2[i], x3[i] = t0/p, t1/p, t2/p, t3/p
		}
		for i := d - 1; i >= 0; i-- {
			t0, t1, t2, t3 := x0[i], x1[i], x2[i], x3[i]
			for k := i + 1; k < d; k++ {
				v := l[k*d+i]
				t0 -= v * x0[k]
				t1 -= v * x1[k]
				t2 -= v * x2[k]
				t3 -= v * x3[k]
			}
			p := l[i*d+i]
			x0[i], x1[i], x2[i], x3[i] = t0/p, t1/p, t2/p, t3/p
		}
	}
	for ; r < k; r++ {
		x := xs[r*d : (r+1)*d]
		cholSolveFactored(l, x, x, d)
	}
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
