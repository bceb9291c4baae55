package train

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// scorePanelsAVX2 is in score_amd64.s.
//
//go:noescape
func scorePanelsAVX2(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32)

// scorePanels is scorePanelsGeneric with AVX2 and FMA when the CPU has
// them: a 6×16 tile of scores in twelve registers, stored only when one of
// its scores reaches its subject's threshold.
func scorePanels(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	np := len(flags)
	if np == 0 {
		return
	}
	_ = tile[np*tileSize-1]
	_ = v[np*d*panelWidth-1]
	_ = bias[np*panelWidth-1]
	_ = u[d*kernelRows-1]
	if haveAVX2 {
		scorePanelsAVX2(tile, flags, u, v, bias, d, thr)
		return
	}
	scorePanelsGeneric(tile, flags, u, v, bias, d, thr)
}
