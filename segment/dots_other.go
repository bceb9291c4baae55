//go:build !amd64

package segment

func dots(out, x, ct []float32, kp int) { dotsGeneric(out, x, ct, kp) }
