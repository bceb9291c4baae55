package mf

//go:generate go run gen_kernels.go

//go:noescape
func cholColN1AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN2AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN3AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN4AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN5AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN6AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN7AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN8AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN9AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN10AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN11AVX2(lt []float64, w, j, off int)

//go:noescape
func cholColN12AVX2(lt []float64, w, j, off int)

// cholColN are the column kernels by their number of vectors.
var cholColN = [...]func(lt []float64, w, j, off int){nil, cholColN1AVX2, cholColN2AVX2, cholColN3AVX2,
	cholColN4AVX2, cholColN5AVX2, cholColN6AVX2, cholColN7AVX2, cholColN8AVX2, cholColN9AVX2, cholColN10AVX2,
	cholColN11AVX2, cholColN12AVX2}

// cholColumn subtracts Σ_k<j L_ik·L_jk from lanes [j, j+4·nv) of column j
// of lt (see chol_amd64.s), up to twelve vectors per pass over k; false
// when the CPU lacks AVX2.
func cholColumn(lt []float64, w, j, nv int) bool {
	if !haveAVX2 {
		return false
	}
	_ = lt[j*w+j+4*nv-1]
	off := j
	for nv > 0 {
		n := min(nv, len(cholColN)-1)
		cholColN[n](lt, w, j, off)
		off += 4 * n
		nv -= n
	}
	return true
}

//go:noescape
func cholScaleAVX2(x []float64, s float64)

//go:noescape
func rhsAddAVX2(rhs, r []float64, on, off float64)

// cholScale divides x by s, padding included: len(x) is rounded up to a
// multiple of 4 within cap(x).
func cholScale(x []float64, s float64) {
	n := (len(x) + 3) &^ 3
	if !haveAVX2 || n > cap(x) {
		for i := range x {
			x[i] /= s
		}
		return
	}
	cholScaleAVX2(x[:n], s)
}

// rhsAdd adds on·r[p] + off·r[p] to rhs[p] (len(rhs) ≤ len(r)).
func rhsAdd(rhs, r []float64, on, off float64) {
	if haveAVX2 && len(rhs)%4 == 0 {
		rhsAddAVX2(rhs, r[:len(rhs)], on, off)
		return
	}
	for p, rp := range r[:len(rhs)] {
		rhs[p] += on*rp + off*rp
	}
}

//go:noescape
func axpyAVX2(y, x []float64, a float64)

//go:noescape
func dotAVX2(x, y []float64) float64

// axpy adds a·x[i] to y[i] (len(y) ≤ len(x)), each product and sum
// rounded as the scalar loop rounds them.
func axpy(y, x []float64, a float64) {
	if haveAVX2 && len(y)%4 == 0 {
		axpyAVX2(y, x[:len(y)], a)
		return
	}
	for i, v := range x[:len(y)] {
		y[i] += a * v
	}
}

// dotLanes is x·y summed in four interleaved lanes (len(x) ≤ len(y)): the
// same value with or without the vector kernel, though not the bits of a
// sum in index order.
func dotLanes(x, y []float64) float64 {
	if haveAVX2 && len(x)%4 == 0 {
		return dotAVX2(x, y[:len(x)])
	}
	return dotLanesGeneric(x, y)
}

//go:noescape
func matVec8AVX2(t, st, r []float64, d, off int)

//go:noescape
func matVec1AVX2(t, st, r []float64, d, off int)

// matVec sets t[p] to Σ_q r[q]·st[q*d+p] for p < d, from zero and in q's
// order, as axpy of each row of st in turn would (the same bits); false
// when the kernel does not apply.
func matVec(t, st, r []float64, d int) bool {
	if !haveAVX2 || d%4 != 0 {
		return false
	}
	_, _, _ = t[d-1], st[d*d-1], r[d-1]
	off := 0
	for ; off+32 <= d; off += 32 {
		matVec8AVX2(t, st, r, d, off)
	}
	for ; off < d; off += 4 {
		matVec1AVX2(t, st, r, d, off)
	}
	return true
}
