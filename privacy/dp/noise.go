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

// Gaussian adds Gaussian noise of scale sigma to every element of dst,
// whose L2 sensitivity (what one unit of privacy, a subject, changes of
// them) is sensitivity, drawing from r. It is the mechanism for vectors
// (DP-SGD gradients, DP k-means sums and counts, the item histogram), and
// it is secure against the floating-point attack (Mironov 2012): every
// output is an exact multiple of Granularity(sigma) and the noise is an
// exact discrete Gaussian on that lattice, with its scale raised so that
// the rounding's sensitivity increase is covered (secure.go has the
// accounting argument). The accountant's noise multiplier is
// sigma/sensitivity.
func Gaussian(dst []float64, sigma, sensitivity float64, r *rand.Rand) {
	newSecureScale(sigma, sensitivity, len(dst)).add(dst, r)
}

// GaussianParallel is Gaussian on up to GOMAXPROCS goroutines, each with a
// fresh secure source, for vectors long enough that one core is the
// bottleneck. newSource is called once per goroutine (NewSecureSource in
// production). The lattice and the noise scale are those of the whole
// vector.
func GaussianParallel(dst []float64, sigma, sensitivity float64, newSource func() rand.Source) {
	sc := newSecureScale(sigma, sensitivity, len(dst))
	const minChunk = 1 << 14
	workers := min(runtime.GOMAXPROCS(0), (len(dst)+minChunk-1)/minChunk)
	if workers <= 1 {
		sc.add(dst, rand.New(newSource()))
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
			sc.add(part, rand.New(src))
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
