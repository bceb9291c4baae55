package mf

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// haveAVX512 selects the AVX-512 scoring kernel (the same bits as the
// AVX2 one, twice the lanes).
var haveAVX512 = haveAVX2 && cpu.X86.HasAVX512F

// scorePanelsAVX2 is in score_amd64.s.
//
//go:noescape
func scorePanelsAVX2(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32)

// scorePanelsAVX512 is in score_amd64.s.
//
//go:noescape
func scorePanelsAVX512(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32)

// scorePanels is scorePanelsGeneric with AVX2 and FMA when the CPU has
// them: a 6×16 tile of scores in twelve registers, stored only when one of
// its scores reaches its subject's threshold; with AVX-512, two such
// tiles at once.
func scorePanels(tile []float32, flags []uint8, u, v, bias []float32, d int, thr *[kernelRows]float32) {
	np := len(flags)
	if np == 0 {
		return
	}
	_ = tile[np*tileSize-1]
	_ = v[np*d*panelWidth-1]
	_ = bias[np*panelWidth-1]
	_ = u[d*kernelRows-1]
	if haveAVX2 && haveAVX512 { // tests turn haveAVX2 off for the portable code
		scorePanelsAVX512(tile, flags, u, v, bias, d, thr)
		return
	}
	if haveAVX2 {
		scorePanelsAVX2(tile, flags, u, v, bias, d, thr)
		return
	}
	scorePanelsGeneric(tile, flags, u, v, bias, d, thr)
}

// gramAdd4AVX2 is in score_amd64.s.
//
//go:noescape
func gramAdd4AVX2(a []float64, d int, r0, r1, r2, r3 []float64, e *[4]float64)

// gramAdd4 adds e[k]·r_k r_kᵀ for the four rows to the lower triangle of
// a (d×d), one row after another for each entry, with the vector kernel
// when d allows; false: the caller adds them.
func gramAdd4(a []float64, d int, r0, r1, r2, r3 []float64, e *[4]float64) bool {
	if !haveAVX2 || d%4 != 0 {
		return false
	}
	_ = a[d*d-1]
	_, _, _, _ = r0[d-1], r1[d-1], r2[d-1], r3[d-1]
	gramAdd4AVX2(a, d, r0, r1, r2, r3, e)
	return true
}

// dot4x4AVX2 is in score_amd64.s.
//
//go:noescape
func dot4x4AVX2(s *[16]float64, v0, v1, v2, v3, xt *float64, d int)

// dot4x4 sets s[4i+c] to the dot product of v_i (d values) with column c
// of xt (d×4, row major), each with dot's operations in its order, four
// sums in one vector register; false: the caller computes them.
func dot4x4(s *[16]float64, v0, v1, v2, v3, xt []float64, d int) bool {
	if !haveAVX2 || d < 1 {
		return false
	}
	_, _, _, _ = v0[d-1], v1[d-1], v2[d-1], v3[d-1]
	_ = xt[4*d-1]
	dot4x4AVX2(s, &v0[0], &v1[0], &v2[0], &v3[0], &xt[0], d)
	return true
}

// cholSolve8AVX2 is in score_amd64.s.
//
//go:noescape
func cholSolve8AVX2(l, xt *float64, d int)

// cholSolve8 solves L Lᵀ x = b in place for the eight columns of xt (d×8,
// row major), each with cholSolveFactored's operations in its order, with
// the vector kernel; false: the caller solves them.
func cholSolve8(l, xt []float64, d int) bool {
	if !haveAVX2 || d < 1 {
		return false
	}
	_ = l[d*d-1]
	_ = xt[8*d-1]
	cholSolve8AVX2(&l[0], &xt[0], d)
	return true
}
