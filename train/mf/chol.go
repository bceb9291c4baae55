package mf

import (
	"fmt"
	"math"
	"sync"
)

// cholWidth is the row width of the factor stored by columns: d entries,
// the forward substitution's lane and padding for the last vector.
func cholWidth(d int) int { return d + 4 }

// cholSolveVec is cholSolve with the factorization and the forward
// substitution done by columns with the vector kernel: it reads only the
// lower triangle of a and leaves the factor L there, as cholSolve does
// (the reasons of recommendations reuse it). lt is scratch of
// d*cholWidth(d).
//
// Column j of the factor is row j of lt, so that the entries of a column
// are contiguous and one vector holds four rows of it; b rides along as
// the lane i = d, where the same subtractions give the forward
// substitution's y_j (the augmented system [A b; bᵀ ·] has L_dj = y_j).
// Every entry gets the operations of cholFactor and cholSolveFactored in
// their order, so x has their bits (TestCholSolveBits); false: no
// vector kernel, the caller uses cholSolve.
func cholSolveVec(a, b, x []float64, d int, lt []float64) (bool, error) {
	w := cholWidth(d)
	_ = lt[d*w-1]
	for j := range d {
		col := lt[j*w : j*w+w]
		for i := j; i < d; i++ {
			col[i] = a[i*d+j]
		}
		col[d] = b[j]
		if !cholColumn(lt, w, j, (d+4-j)/4) {
			return false, nil
		}
		s := col[j]
		if !(s > 0) || math.IsInf(s, 0) {
			return true, fmt.Errorf("%w: subject system not positive definite", ErrDiverged)
		}
		s = math.Sqrt(s)
		cholScale(col[j+1:d+1], s) // padding to w: the kernel's lanes
		col[j] = s
		for i := j; i < d; i++ { // a keeps the factor, as after cholSolve
			a[i*d+j] = col[i]
		}
	}
	for i := d - 1; i >= 0; i-- {
		li := lt[i*w : i*w+d] // L_ki for k >= i
		t := lt[i*w+d]
		for k := i + 1; k < d; k++ {
			t -= li[k] * x[k]
		}
		x[i] = t / li[i]
	}
	return true, nil
}

// cholPool holds the column-stored factors of Solve's callers, one per
// goroutine at a time, keyed by nothing: a buffer too small for a dimension
// is replaced.
var cholPool sync.Pool

// solveSystem solves a x = b for the subject system Solve built in the
// lower triangle of a.
func solveSystem(a, b, x []float64, d int) error {
	n := d * cholWidth(d)
	p, _ := cholPool.Get().(*[]float64)
	if p == nil || len(*p) < n {
		buf := make([]float64, n)
		p = &buf
	}
	ok, err := cholSolveVec(a, b, x, d, *p)
	cholPool.Put(p)
	if ok {
		return err
	}
	return cholSolve(a, b, x, d)
}

// dotLanesGeneric is dotLanes without the vector kernel: lane l sums the
// products of the indices i ≡ l mod 4 in order, and the lanes are added as
// (l0+l1)+(l2+l3), as the kernel adds them; a tail beyond a multiple of 4
// is added last, in order.
func dotLanesGeneric(x, y []float64) float64 {
	var l [4]float64
	n := len(x) &^ 3
	for i := 0; i < n; i += 4 {
		l[0] += x[i] * y[i]
		l[1] += x[i+1] * y[i+1]
		l[2] += x[i+2] * y[i+2]
		l[3] += x[i+3] * y[i+3]
	}
	s := (l[0] + l[1]) + (l[2] + l[3])
	for i := n; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}
