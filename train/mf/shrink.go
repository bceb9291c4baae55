package mf

import (
	"cmp"
	"math"
	"slices"
)

// ShrinkBand is one popularity band of the shrinkage toward the prior: the
// items of ranks [First, Last) by prior bias (the released histogram's
// count) and the share of their learned deviation the model keeps, for the
// factors and for the biases. The shares are computed from released noisy
// sums only (post-processing).
type ShrinkBand struct {
	First   int     `json:"first_rank"`
	Last    int     `json:"last_rank"`
	Factors float64 `json:"factors_kept"`
	Biases  float64 `json:"biases_kept"`
}

// shrinkFirstBand is the size of the most popular band; each further band
// is twice the size of all before it (ranks 32, 64, 128, ...), so that the
// items of a band have counts within about a factor 2 of each other, and
// even the first band's estimate rests on 32·d factor coordinates.
const shrinkFirstBand = 32

// keptShare is the positive-part James–Stein share of a group of n
// coordinates whose released sum x has energy sum(x²) and independent
// Gaussian noise of variance v per coordinate: an estimate of
// |signal|²/|x|², 0 when the energy is no more than noise explains.
func keptShare(energy float64, n int, v float64) float64 {
	if n < 3 || !(energy > 0) {
		return 0
	}
	return math.Max(0, 1-float64(n-2)*v/energy)
}

// shrinkToPrior pulls the trained item rows of m back toward prior (the
// rows Fit started from: random factors and the popularity prior's biases)
// in proportion to how much of what the run released was noise.
//
// released is the sum over all steps of the released (noisy) item rows of
// the update, divided by the normalizer: its noise is exactly Gaussian with
// variance v per coordinate (steps·(σC/(qÑ))²), all of it known from the
// plan and the noisy subject count. In a band of items of similar
// popularity the signal is of similar size, so the band's released energy
// minus the energy the noise explains estimates its signal; the band keeps
// that share of its deviation from the prior, for factors and biases apart
// (their signals differ in scale). On pure noise the share is about 0 and
// the model stays at the prior whatever the optimizer did; with a strong
// signal it is about 1 and the model is the trained one.
//
// Adam turns a coordinate whose gradient is mostly noise into steps of about
// its learning rate whatever their sign (it is then SGD with step lr/σ, Tang
// et al. 2023), so the deviation of such a band is close to linear in its
// released sum and the James–Stein share is the right weight for it.
//
// Bands follow the prior's bias, which orders items by the released
// histogram count (a DP release); ties keep catalog order. It returns the
// bands with their shares.
func shrinkToPrior(m *Model, prior, released []float64, v float64) []ShrinkBand {
	d := m.Dim
	w := d + 1
	n := len(m.Items)
	if len(prior) != len(m.P) || len(released) != len(m.P) {
		panic("train: shrinkToPrior: dimension mismatch")
	}
	order := make([]int, n)
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(prior[b*w+d], prior[a*w+d]) })
	var bands []ShrinkBand
	for lo := 0; lo < n; {
		hi := min(n, max(shrinkFirstBand, 2*lo))
		var ef, eb float64
		for _, j := range order[lo:hi] {
			g := released[j*w : (j+1)*w]
			for _, x := range g[:d] {
				ef += x * x
			}
			eb += g[d] * g[d]
		}
		b := ShrinkBand{First: lo, Last: hi, Factors: keptShare(ef, (hi-lo)*d, v), Biases: keptShare(eb, hi-lo, v)}
		for _, j := range order[lo:hi] {
			r, p0 := m.Row(j), prior[j*w:(j+1)*w]
			for p := range d {
				r[p] = p0[p] + b.Factors*(r[p]-p0[p])
			}
			r[d] = p0[d] + b.Biases*(r[d]-p0[d])
		}
		bands = append(bands, b)
		lo = hi
	}
	return bands
}
