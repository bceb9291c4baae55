package mf

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/veil-privacy/veil/privacy/dp"
)

// universe is the item universe of a run and the popularity prior over it:
// what Fit releases before DP-SGD.
type universe struct {
	items  []string  // the model's items
	index  []int32   // data item -> model item, -1 outside the universe
	counts []float64 // per model item: the histogram's (noisy in a private run) count
	// subjects is the histogram's subject count (noisy in a private run):
	// the normalizer of the DP-SGD update.
	subjects float64
}

// itemIndex maps the data's items to ids' positions (-1: not among them).
// ids must not repeat.
func itemIndex(data, ids []string) []int32 {
	pos := make(map[string]int32, len(ids))
	for k, id := range ids {
		pos[id] = int32(k)
	}
	index := make([]int32, len(data))
	for j, id := range data {
		k, ok := pos[id]
		if !ok {
			k = -1
		}
		index[j] = k
	}
	return index
}

// CatalogItems returns the ids of a catalog in order, without repeats or
// empty ids: the item universe a catalog declares.
func CatalogItems(catalog []string) []string {
	seen := make(map[string]bool, len(catalog))
	out := make([]string, 0, len(catalog))
	for _, id := range catalog {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// itemUniverse releases the item-count histogram of the subjects' bounded
// rows (data item indices) and fixes the item universe: the catalog when
// there is one, otherwise (private) the items whose noisy count passes the
// plan's threshold, otherwise (not private) every item of the data.
//
// Each subject counts once in the subjects bin and once for each of at most
// k distinct items of its rows inside the catalog, chosen by its own keyed
// randomness: the vector's L2 sensitivity is √(k+1), and in a private run
// Gaussian noise of standard deviation HistogramNoise·√(k+1) from the noise
// source is added to every bin, whether or not anybody holds the item.
func itemUniverse(d *Data, rows [][]Interaction, keys []uint64, cfg Config, plan Plan, private bool, newSource func() rand.Source) (*universe, error) {
	u := &universe{}
	candidates := d.Items
	if len(cfg.Catalog) > 0 {
		candidates = CatalogItems(cfg.Catalog)
	}
	index := itemIndex(d.Items, candidates)
	k := max(1, plan.HistogramItems)
	hist := make([]float64, 1+len(candidates)) // hist[0] counts subjects, hist[1+c] item c
	// held marks the items some subject's bounded, picked set holds: only
	// they are candidates of partition selection. An item that only the
	// dropped part of a subject's rows (max_interactions, the k picks, the
	// holdout) holds has count 0 and must never be released: its noisy
	// count would pass the threshold with probability p each, and one
	// subject can hold arbitrarily many such items.
	held := make([]bool, len(candidates))
	var pick []int32
	for s, r := range rows {
		pick = pick[:0]
		for _, x := range r {
			if c := index[x.Item]; c >= 0 {
				pick = append(pick, c)
			}
		}
		if len(pick) > k {
			pr := rand.New(rand.NewPCG(cfg.Seed^keys[s], 0x4157))
			pr.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
			pick = pick[:k]
		}
		for _, c := range pick {
			hist[1+c]++
			held[c] = true
		}
		hist[0]++
	}
	if private {
		dp.GaussianParallel(hist, plan.HistogramNoise*math.Sqrt(float64(k+1)), math.Sqrt(float64(k+1)), newSource)
	}
	u.subjects = math.Max(1, hist[0])
	counts := hist[1:]
	if !private || len(cfg.Catalog) > 0 {
		u.items, u.counts = candidates, counts
	} else {
		if !(plan.SelectionDelta > 0) {
			return nil, fmt.Errorf("%w: a private run without a catalog needs a plan with partition selection", ErrConfig)
		}
		keep := make([]int32, len(candidates))
		for c, v := range counts {
			keep[c] = -1
			if held[c] && v > plan.Threshold {
				keep[c] = int32(len(u.items))
				u.items = append(u.items, candidates[c])
				u.counts = append(u.counts, v)
			}
		}
		if len(u.items) == 0 {
			return nil, fmt.Errorf("%w: %w (threshold %.4g); give a catalog, more data or a larger ε", ErrInput, ErrNoItemSelected, plan.Threshold)
		}
		for j, c := range index {
			if c >= 0 {
				index[j] = keep[c]
			}
		}
	}
	u.index = index
	return u, nil
}

// remapRows maps rows to model items, dropping interactions outside the
// universe; it reports how many it dropped.
func remapRows(rows [][]Interaction, index []int32) (out [][]Interaction, dropped int) {
	out = make([][]Interaction, len(rows))
	for s, r := range rows {
		m := make([]Interaction, 0, len(r))
		for _, x := range r {
			if c := index[x.Item]; c >= 0 {
				x.Item = c
				m = append(m, x)
			} else {
				dropped++
			}
		}
		out[s] = m
	}
	return out, dropped
}

// priorBias is the bias an item gets before training from its (noisy)
// count n of N subjects: the least-squares preference of a subject with no
// factor, weight 1 on holders and w0 on everyone else, n/(n + w0(N-n)), so
// that the untrained model ranks by popularity.
func priorBias(n, subjects, w0 float64) float64 {
	n = math.Min(math.Max(n, 0), subjects)
	if n == 0 {
		return 0
	}
	return n / (n + w0*(subjects-n))
}

// priorPopularity returns the prior bias of each of n items from the rows
// Fit starts from (prior, d factors and a bias per item).
func priorPopularity(prior []float64, d, n int) []float64 {
	out := make([]float64, n)
	for j := range out {
		out[j] = prior[j*(d+1)+d]
	}
	return out
}
