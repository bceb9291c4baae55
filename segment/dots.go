package segment

import "math"

// dotsGeneric is the portable dots.
func dotsGeneric(out, x, ct []float32, kp int) {
	out = out[:kp]
	clear(out)
	for j, v := range x {
		row := ct[j*kp : j*kp+kp]
		for c := range out {
			out[c] += v * row[c]
		}
	}
}

// centreBlock holds the centres in the layout of the dots kernel: transposed,
// padded to a multiple of 32 with centres that never win (infinite norm).
type centreBlock struct {
	k, kp int
	ct    []float32 // d × kp
	norms []float32 // |c|², +Inf for padding
}

func newCentreBlock(k, d int) *centreBlock {
	kp := (k + 31) / 32 * 32
	b := &centreBlock{k: k, kp: kp, ct: make([]float32, d*kp), norms: make([]float32, kp)}
	for c := k; c < kp; c++ {
		b.norms[c] = float32(math.Inf(1))
	}
	return b
}

// load copies centres into the block.
func (b *centreBlock) load(centres *Matrix) {
	d := centres.D
	for c := range b.k {
		row := centres.Row(c)
		var n float32
		for j, v := range row {
			b.ct[j*b.kp+c] = v
			n += v * v
		}
		b.norms[c] = n
	}
	_ = d
}

// nearest2 returns the nearest centre to x (whose squared norm is xx) and
// the distances to the nearest and second nearest, from |x|² + |c|² - 2x·c,
// the GEMM formulation scikit-learn also uses. scratch holds kp floats.
func (b *centreBlock) nearest2(x []float32, xx float32, scratch []float32) (int32, float32, float32) {
	dots(scratch, x, b.ct, b.kp)
	norms, sc := b.norms[:b.k], scratch[:b.k]
	// |x|² is the same for every centre: compare |c|² - 2x·c. The inner
	// branch is rarely taken, so it predicts well.
	best, second := float32(math.Inf(1)), float32(math.Inf(1))
	var a int
	for c, n := range norms {
		if s := n - 2*sc[c]; s < second {
			if s < best {
				second, best, a = best, s, c
			} else {
				second = s
			}
		}
	}
	return int32(a), float32(math.Sqrt(float64(max(best+xx, 0)))), float32(math.Sqrt(float64(max(second+xx, 0))))
}
