//go:build !amd64

package train

func scorePanels(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	scorePanelsGeneric(tile, flags, u, v, bias, d, thr)
}
