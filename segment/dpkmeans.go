package segment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/dp"
)

// DPConfig turns on DP k-means (the privacy section of a segment job).
type DPConfig struct {
	Epsilon    float64 `yaml:"epsilon"`
	Delta      float64 `yaml:"delta"`
	Iterations int     `yaml:"iterations"`  // Lloyd iterations, planned up front (default 8)
	ClipRadius float64 `yaml:"clip_radius"` // L2 bound on each subject's scaled feature vector (default 1.5)
	Accountant string  `yaml:"accountant"`  // rdp or pld (default pld)

	// iterHook, when set, is called at every iteration with the exact and
	// the released (noisy) sums and counts: the white-box audit only.
	iterHook func(iter int, sums, counts, noisySums, noisyCounts []float64)
}

func (c *DPConfig) defaults() {
	if c.Iterations == 0 {
		c.Iterations = 8
	}
	if c.ClipRadius == 0 {
		c.ClipRadius = 1.5
	}
	if c.Accountant == "" {
		c.Accountant = "pld"
	}
}

// Validate reports whether the DP settings are usable.
func (c *DPConfig) Validate() error {
	c.defaults()
	switch {
	case !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 0):
		return fmt.Errorf("%w: privacy.epsilon %v must be positive and finite", ErrConfig, c.Epsilon)
	case !(c.Delta > 0 && c.Delta < 1):
		return fmt.Errorf("%w: privacy.delta %v must be in (0, 1)", ErrConfig, c.Delta)
	case c.Iterations < 1 || c.Iterations > 1000:
		return fmt.Errorf("%w: privacy.iterations %d must be in [1, 1000]", ErrConfig, c.Iterations)
	case !(c.ClipRadius > 0) || math.IsInf(c.ClipRadius, 0):
		return fmt.Errorf("%w: privacy.clip_radius %v must be positive", ErrConfig, c.ClipRadius)
	case c.Accountant != "rdp" && c.Accountant != "pld":
		return fmt.Errorf("%w: privacy.accountant %q (want rdp or pld)", ErrConfig, c.Accountant)
	}
	return nil
}

// Plan calibrates the noise for the planned iterations and returns the
// accountant event that the run spends: each iteration releases, per
// cluster, the sum of the clipped vectors (L2 sensitivity R) and the count
// (sensitivity 1). Scaled by R, (sums/R, counts) has L2 sensitivity √2 under
// adding or removing one subject (one cluster changes), so Gaussian noise of
// standard deviation σ on sums/R and on counts is the Gaussian mechanism with
// noise multiplier σ/√2.
func (c *DPConfig) Plan() (sigma float64, ev accountant.Event, spent accountant.Result, err error) {
	if err := c.Validate(); err != nil {
		return 0, ev, spent, err
	}
	cal, err := accountant.Calibrate(c.Accountant, c.Epsilon, 1, c.Iterations, c.Delta)
	if err != nil {
		return 0, ev, spent, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ev = accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: cal.NoiseMultiplier, Count: c.Iterations, Note: "DP k-means: noisy cluster sums and counts"}
	spent, err = accountant.Spent(c.Accountant, c.Delta, ev)
	return cal.NoiseMultiplier * math.Sqrt2, ev, spent, err
}

// DPResult is a DP k-means fit.
type DPResult struct {
	Centroids   *Matrix
	NoisyCounts []float64
	Sigma       float64 // noise standard deviation on sums/R and counts
	Iterations  int
}

// clipRows scales every row of x to L2 norm at most r, in place.
func clipRows(x *Matrix, r float64) int {
	clipped := 0
	for i := range x.N {
		row := x.Row(i)
		var n float64
		for _, v := range row {
			n += float64(v) * float64(v)
		}
		if n = math.Sqrt(n); n > r {
			s := float32(r / n)
			for j := range row {
				row[j] *= s
			}
			clipped++
		}
	}
	return clipped
}

// FitDP runs DP-Lloyd (Blum et al. 2005; Su et al. 2016) on rows in
// [0, 1]^D already clipped to norm R: initial centres drawn independently of
// the data, then a fixed number of iterations that each
// release noisy per-cluster sums and counts from a secure source; a new
// centre is the noisy sum over the noisy count (at least 1), projected back
// into the ball of radius R. Everything after the release is post-processing.
func FitDP(ctx context.Context, x *Matrix, k int, cfg DPConfig, sigma float64, noise rand.Source, seed uint64) (*DPResult, error) {
	if k < 1 || k > x.N {
		return nil, fmt.Errorf("%w: k = %d for %d subjects", ErrConfig, k, x.N)
	}
	r := cfg.ClipRadius
	init := rand.New(rand.NewPCG(seed, 0xd9))
	c := NewMatrix(k, x.D)
	// DP features lie in [0, 1]^D inside the ball of radius R: initial
	// centres are uniform in the box, projected into the ball, drawn
	// without looking at the data.
	place := func(row []float32) {
		var norm float64
		for t := range row {
			row[t] = float32(init.Float64())
			norm += float64(row[t]) * float64(row[t])
		}
		if norm = math.Sqrt(norm); norm > r {
			for t := range row {
				row[t] *= float32(r / norm)
			}
		}
	}
	for j := range k {
		place(c.Row(j))
	}
	rng := rand.New(noise)
	counts := make([]float64, k)
	sums := make([]float64, k*x.D)
	blk := newCentreBlock(k, x.D)
	scratch := make([]float32, blk.kp)
	var exactSums, exactCounts []float64
	for iter := range cfg.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clear(counts)
		clear(sums)
		blk.load(c)
		for i := range x.N {
			row := x.Row(i)
			var xx float32
			for _, v := range row {
				xx += v * v
			}
			a, _, _ := blk.nearest2(row, xx, scratch)
			counts[a]++
			for j, v := range row {
				sums[int(a)*x.D+j] += float64(v)
			}
		}
		// The release: N(0, (σR)²) on every sum coordinate, N(0, σ²) on
		// every count.
		if cfg.iterHook != nil {
			exactSums, exactCounts = append(exactSums[:0], sums...), append(exactCounts[:0], counts...)
		}
		dp.Gaussian(sums, sigma*r, r, rng)
		dp.Gaussian(counts, sigma, 1, rng)
		if cfg.iterHook != nil {
			cfg.iterHook(iter, exactSums, exactCounts, sums, counts)
		}
		for j := range k {
			row := c.Row(j)
			if counts[j] < 1 {
				// Empty, as far as the noisy count tells: start again
				// elsewhere (post-processing of the release).
				place(row)
				continue
			}
			n := counts[j]
			var norm float64
			for t := range x.D {
				v := sums[j*x.D+t] / n
				row[t] = float32(v)
				norm += v * v
			}
			if norm = math.Sqrt(norm); norm > r {
				for t := range row {
					row[t] *= float32(r / norm)
				}
			}
		}
	}
	return &DPResult{Centroids: c, NoisyCounts: counts, Sigma: sigma, Iterations: cfg.Iterations}, nil
}

// Objective is the k-means objective of centres c on x (each point to its
// nearest centre), in float64.
func Objective(x, c *Matrix) float64 {
	var s float64
	for i := range x.N {
		a, _, _ := nearest2(x.Row(i), c)
		s += sqDist64(x.Row(i), c.Row(int(a)))
	}
	return s
}

// Assign labels every row with its nearest centre and returns the distances.
func Assign(x, c *Matrix) ([]int32, []float32) {
	labels := make([]int32, x.N)
	dist := make([]float32, x.N)
	for i := range x.N {
		labels[i], dist[i], _ = nearest2(x.Row(i), c)
	}
	return labels, dist
}
