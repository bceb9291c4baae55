package segment

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
