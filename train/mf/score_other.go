//go:build !amd64

package mf

// haveAVX2 is false where there are no vector kernels (tests set it on
// amd64 to check the portable paths).
var haveAVX2 = false

var haveAVX512 = false

func scorePanels(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	scorePanelsGeneric(tile, flags, u, v, bias, d, thr)
}

func gramAdd4(a []float64, d int, r0, r1, r2, r3 []float64, e *[4]float64) bool { return false }

func cholColumn(lt []float64, w, j, nv int) bool { return false }

func cholScale(x []float64, s float64) {
	for i := range x {
		x[i] /= s
	}
}

func rhsAdd(rhs, r []float64, on, off float64) {
	for p, rp := range r[:len(rhs)] {
		rhs[p] += on*rp + off*rp
	}
}

func dot4x4(s *[16]float64, v0, v1, v2, v3, xt []float64, d int) bool { return false }

func cholSolve8(l, xt []float64, d int) bool { return false }

func axpy(y, x []float64, a float64) {
	for i, v := range x[:len(y)] {
		y[i] += a * v
	}
}

func dotLanes(x, y []float64) float64 { return dotLanesGeneric(x, y) }

func matVec(t, st, r []float64, d int) bool { return false }
