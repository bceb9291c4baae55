package kmeans

import (
	"fmt"
	"math"
)

// Matrix is a dense row-major matrix of float32: row i is
// Data[i*D : (i+1)*D]. It holds points or centroids.
type Matrix struct {
	N, D int
	Data []float32
}

// NewMatrix returns a zero n×d matrix.
func NewMatrix(n, d int) *Matrix { return &Matrix{N: n, D: d, Data: make([]float32, n*d)} }

// Row returns row i, sharing memory with m.
func (m *Matrix) Row(i int) []float32 { return m.Data[i*m.D : (i+1)*m.D : (i+1)*m.D] }

// Check reports whether the matrix is well formed and finite.
func (m *Matrix) Check() error {
	if m.N < 1 || m.D < 1 || len(m.Data) != m.N*m.D {
		return fmt.Errorf("%w: matrix %d×%d with %d values", ErrInput, m.N, m.D, len(m.Data))
	}
	for i, v := range m.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: row %d, column %d is %v", ErrInput, i/m.D, i%m.D, v)
		}
	}
	return nil
}

// checkParallel is Check on several goroutines, for large matrices.
func (m *Matrix) checkParallel(workers int) error {
	if m.N < 1 || m.D < 1 || len(m.Data) != m.N*m.D || m.N < 1<<14 {
		return m.Check()
	}
	bad := make([]int, workers)
	parallel(m.N, workers, func(w, lo, hi int) {
		bad[w] = -1
		for i, v := range m.Data[lo*m.D : hi*m.D] {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				bad[w] = lo*m.D + i
				return
			}
		}
	})
	for _, i := range bad {
		if i >= 0 {
			return fmt.Errorf("%w: row %d, column %d is %v", ErrInput, i/m.D, i%m.D, m.Data[i])
		}
	}
	return nil
}

// sqDist returns the squared Euclidean distance between x and c, which have
// the same length. It accumulates in four float32 lanes; the callers compare
// distances, and the inertia is recomputed in float64.
func sqDist(x, c []float32) float32 {
	c = c[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := x[i]-c[i], x[i+1]-c[i+1], x[i+2]-c[i+2], x[i+3]-c[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - c[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// SquaredDistance returns the squared Euclidean distance between x and c,
// which have the same length, accumulated in float64 (for objectives and
// comparisons that must not depend on float32 rounding).
func SquaredDistance(x, c []float32) float64 {
	var s float64
	for i := range x {
		d := float64(x[i]) - float64(c[i])
		s += d * d
	}
	return s
}
