//go:build !amd64

package kmeans

func dots(out, x, ct []float32, kp int) { dotsGeneric(out, x, ct, kp) }

func dots2(out1, out2, x1, x2, ct []float32, kp int) {
	dotsGeneric(out1, x1, ct, kp)
	dotsGeneric(out2, x2, ct, kp)
}

func (b *centreBlock) pickLanes(xx float32, scratch []float32) (int32, float32, float32, bool) {
	return 0, 0, 0, false
}

func sqDistFast(x, c []float32) float32 { return sqDist(x, c) }
