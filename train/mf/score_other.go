//go:build !amd64

package mf

func scorePanels(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	scorePanelsGeneric(tile, flags, u, v, bias, d, thr)
}

func gramAdd4(a []float64, d int, r0, r1, r2, r3 []float64, e *[4]float64) bool { return false }
