package train

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/veil-privacy/veil/train/mf"
)

// Exposure describes how recommendations spread over the catalog: a shop
// whose recommendations all point at a few best-sellers narrows what
// customers see and what sells.
type Exposure struct {
	Recommendations int     `json:"recommendations"`
	Coverage        float64 `json:"catalog_coverage"` // share of items recommended to anyone
	Gini            float64 `json:"gini"`             // of recommendation counts over all items: 0 even, 1 one item
	// PopularShare is the share of recommendations that go to the 10% of
	// items with the most interactions, beside that 10%'s share of the
	// interactions themselves.
	PopularShare            float64 `json:"top_decile_share_of_recommendations"`
	PopularInteractionShare float64 `json:"top_decile_share_of_interactions"`
}

// ExposureConfig sets when exposure becomes a warning.
type ExposureConfig struct {
	// MaxGini warns above this Gini of exposure (default 0.95).
	MaxGini float64 `yaml:"max_gini"`
}

// interactionsPerItem counts d's interactions with each of items (the
// model's); interactions with other items are left out. (Counting in place
// of remapping the rows with d.OnItems: that copy of every interaction was
// the largest allocation of the recommend phase.)
func interactionsPerItem(d *mf.Data, items []string) []float64 {
	index := make(map[string]int32, len(items))
	for j, id := range items {
		index[id] = int32(j)
	}
	model := make([]int32, len(d.Items))
	for j, id := range d.Items {
		model[j] = -1
		if k, ok := index[id]; ok {
			model[j] = k
		}
	}
	inter := make([]float64, len(items))
	for _, rows := range d.Rows {
		for _, x := range rows {
			if k := model[x.Item]; k >= 0 {
				inter[k]++
			}
		}
	}
	return inter
}

// exposure measures the recommendations of a run (indices of the model's
// items) against the interactions with each item (interactionsPerItem).
func exposure(inter []float64, recItems []int32) Exposure {
	n := len(inter)
	counts := make([]float64, n)
	for _, j := range recItems {
		counts[j]++
	}
	total := 0.0
	for _, c := range inter {
		total += c
	}
	e := Exposure{Recommendations: len(recItems)}
	covered := 0
	for _, c := range counts {
		if c > 0 {
			covered++
		}
	}
	e.Coverage = float64(covered) / float64(max(1, n))
	e.Gini = gini(counts)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Or(cmp.Compare(inter[b], inter[a]), cmp.Compare(a, b)) })
	top := order[:max(1, n/10)]
	var rec, in float64
	for _, j := range top {
		rec += counts[j]
		in += inter[j]
	}
	if len(recItems) > 0 {
		e.PopularShare = rec / float64(len(recItems))
	}
	if total > 0 {
		e.PopularInteractionShare = in / total
	}
	return e
}

// gini is the Gini coefficient of non-negative values.
func gini(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	var sum, weighted float64
	for i, x := range s {
		sum += x
		weighted += float64(i+1) * x
	}
	n := float64(len(s))
	if sum == 0 || n == 0 {
		return 0
	}
	return (2*weighted)/(n*sum) - (n+1)/n
}

func (e Exposure) warning(cfg ExposureConfig) string {
	if e.Recommendations > 0 && e.Gini > cfg.MaxGini {
		return fmt.Sprintf("recommendations are concentrated: Gini of exposure %.3f > %.3g (%.0f%% of them go to the 10%% most popular items, which have %.0f%% of the interactions)",
			e.Gini, cfg.MaxGini, 100*e.PopularShare, 100*e.PopularInteractionShare)
	}
	return ""
}
