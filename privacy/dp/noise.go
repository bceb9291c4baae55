package dp

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// ErrParam is returned for a mechanism parameter that is out of range.
var ErrParam = errors.New("invalid mechanism parameter")

// NewSecureSource returns a ChaCha8 generator (a cryptographically secure
// PRNG) seeded with 32 bytes from crypto/rand. It is the source for all DP
// noise. It is not safe for concurrent use: give each goroutine its own.
func NewSecureSource() *rand.ChaCha8 {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+
		// crashes the program instead); keep the check for clarity.
		panic("crypto/rand: " + err.Error())
	}
	return rand.NewChaCha8(seed)
}

// NewTestSource returns a deterministic ChaCha8 generator for tests. Never
// use it for a release: its noise is predictable.
func NewTestSource(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// Gaussian adds N(0, sigma²) noise to every element of dst, drawing from r.
// It is the mechanism for vectors (DP-SGD gradients, cluster sums): the
// noise is a floating-point Gaussian from the ziggurat method over a CSPRNG.
func Gaussian(dst []float64, sigma float64, r *rand.Rand) {
	for i := range dst {
		dst[i] += sigma * r.NormFloat64()
	}
}

// GaussianParallel adds N(0, sigma²) noise to every element of dst on up to
// GOMAXPROCS goroutines, each with a fresh secure source, for vectors long
// enough that one core is the bottleneck. newSource is called once per
// goroutine (NewSecureSource in production).
func GaussianParallel(dst []float64, sigma float64, newSource func() rand.Source) {
	const minChunk = 1 << 16
	workers := min(runtime.GOMAXPROCS(0), (len(dst)+minChunk-1)/minChunk)
	if workers <= 1 {
		Gaussian(dst, sigma, rand.New(newSource()))
		return
	}
	chunk := (len(dst) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(dst); lo += chunk {
		part := dst[lo:min(lo+chunk, len(dst))]
		src := newSource()
		wg.Add(1)
		go func() {
			defer wg.Done()
			Gaussian(part, sigma, rand.New(src))
		}()
	}
	wg.Wait()
}

// CheckSigma reports whether sigma is a usable noise scale.
func CheckSigma(sigma float64) error {
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return fmt.Errorf("%w: noise scale %v must be positive and finite", ErrParam, sigma)
	}
	return nil
}
