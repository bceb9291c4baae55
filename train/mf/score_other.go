//go:build !amd64

package mf

// haveAVX2 is false off amd64: the scalar kernels (tests switch it too).
var haveAVX2 = false

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
