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

// exposure measures the recommendations of a run against the interactions.
func exposure(d *mf.Data, recItems []int32) Exposure {
	n := len(d.Items)
	counts := make([]float64, n)
	for _, j := range recItems {
		counts[j]++
	}
	inter := make([]float64, n)
	total := 0.0
	for _, rows := range d.Rows {
		for _, x := range rows {
			inter[x.Item]++
			total++
		}
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
