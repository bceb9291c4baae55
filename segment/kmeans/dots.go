package kmeans

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
	return b.pick(xx, scratch)
}

// nearest2Pair is nearest2 for two points; scratch holds 2·kp floats.
func (b *centreBlock) nearest2Pair(x1, x2 []float32, xx1, xx2 float32, scratch []float32) (a1 int32, d11, d12 float32, a2 int32, d21, d22 float32) {
	s1, s2 := scratch[:b.kp], scratch[b.kp:2*b.kp]
	dots2(s1, s2, x1, x2, b.ct, b.kp)
	a1, d11, d12 = b.pick(xx1, s1)
	a2, d21, d22 = b.pick(xx2, s2)
	return
}

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(max(v, 0)))) }

// pick finds the nearest and second nearest centres from the dots.
func (b *centreBlock) pick(xx float32, scratch []float32) (int32, float32, float32) {
	if a, d1, d2, ok := b.pickLanes(xx, scratch); ok {
		return a, d1, d2
	}
	return b.pickGeneric(xx, scratch)
}

// pickGeneric is the portable pick.
func (b *centreBlock) pickGeneric(xx float32, scratch []float32) (int32, float32, float32) {
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
