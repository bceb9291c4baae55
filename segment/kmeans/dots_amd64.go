package kmeans

import "golang.org/x/sys/cpu"

// dotsAVX2 is in dots_amd64.s.
//
//go:noescape
func dotsAVX2(out, x, ct []float32, kp int)

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dots sets out[c] = x · centre c for the transposed centres ct (row j holds
// coordinate j of every centre, kp centres wide, kp a multiple of 32).
func dots(out, x, ct []float32, kp int) {
	if haveAVX2 {
		_ = out[kp-1]
		_ = ct[len(x)*kp-1]
		dotsAVX2(out, x, ct, kp)
		return
	}
	dotsGeneric(out, x, ct, kp)
}

// dots2AVX2 is in dots_amd64.s.
//
//go:noescape
func dots2AVX2(out1, out2, x1, x2, ct []float32, kp int)

// dots2 is dots for two points at once, sharing the loads of the centres.
func dots2(out1, out2, x1, x2, ct []float32, kp int) {
	if haveAVX2 {
		_, _ = out1[kp-1], out2[kp-1]
		_ = x2[len(x1)-1]
		_ = ct[len(x1)*kp-1]
		dots2AVX2(out1, out2, x1, x2, ct, kp)
		return
	}
	dotsGeneric(out1, x1, ct, kp)
	dotsGeneric(out2, x2, ct, kp)
}

// pickAVX2 is in dots_amd64.s.
//
//go:noescape
func pickAVX2(dots, norms []float32, kp int, out *[3]float32)

// pickLanes finds the nearest and second nearest centres from the dots with
// the vector kernel.
func (b *centreBlock) pickLanes(xx float32, scratch []float32) (int32, float32, float32, bool) {
	if !haveAVX2 {
		return 0, 0, 0, false
	}
	var out [3]float32
	_ = scratch[b.kp-1]
	pickAVX2(scratch, b.norms, b.kp, &out)
	return int32(out[1]), sqrt32(out[0] + xx), sqrt32(out[2] + xx), true
}

// sqDistAVX2 is in dots_amd64.s.
//
//go:noescape
func sqDistAVX2(x, c []float32) float32

// sqDistFast is sqDist with the vector kernel when the length allows.
func sqDistFast(x, c []float32) float32 {
	if haveAVX2 && len(x)%8 == 0 && len(x) > 0 {
		_ = c[len(x)-1]
		return sqDistAVX2(x, c)
	}
	return sqDist(x, c)
}
