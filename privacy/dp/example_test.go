package dp_test

import (
	"fmt"

	"github.com/veil-privacy/veil/privacy/dp"
)

// The noise Gaussian adds to a model of 100,000 items × 10 factors, at
// σ 1 for sensitivity 0.5, is a little above the σ asked for: the lattice
// rounding's cost, which an audit of the released noise must expect.
func ExampleNoiseScale() {
	fmt.Printf("%.4f\n", dp.NoiseScale(1, 0.5, 1_000_000))
	// Output: 1.0076
}
