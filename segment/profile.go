package segment

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/veil-privacy/veil/segment/kmeans"
)

// Floor configures the cohort floor.
type Floor struct {
	MinSize int    `yaml:"min_size"` // no exported cohort is smaller (default 100)
	Small   string `yaml:"small"`    // "merge" into the nearest cohort (default) or "suppress"
}

// Cohort is one cohort after the floor.
type Cohort struct {
	ID      int
	Cluster int   // the k-means cluster the cohort is built on
	Members []int // rows of the feature matrix
	Note    string
	// NoisySize is the cohort's released size in DP runs: the noisy sizes
	// of its cluster and of those merged into it.
	NoisySize int64
}

// ApplyFloorSizes is ApplyFloor deciding on the given (noisy) sizes and
// centroids instead of the exact ones, for DP runs: what the floor does then
// depends only on released quantities.
func ApplyFloorSizes(x *kmeans.Matrix, labels []int32, k int, fl Floor, sizes []int64, centroids *kmeans.Matrix) ([]Cohort, []int, error) {
	if fl.MinSize < 1 || (fl.Small != "merge" && fl.Small != "suppress") {
		return ApplyFloor(x, labels, k, fl) // reports the configuration error
	}
	final, out, err := PlanFloor(sizes, centroids, fl, "a noisy size")
	var suppressed []int
	for i, l := range labels {
		if f := final[l]; f >= 0 {
			out[f].Members = append(out[f].Members, i)
		} else {
			suppressed = append(suppressed, i)
		}
	}
	return out, suppressed, err
}

// PlanFloor decides the cohort floor on cluster sizes: the smallest
// cluster below MinSize is merged into the living cluster with the nearest
// centroid (or suppressed), until none is below. final[c] is the cohort
// (an index into cohorts) that cluster c's subjects join, -1 if
// suppressed; cohorts carry their merged sizes (in NoisySize) and notes,
// not their members. what names the sizes in notes ("a size").
func PlanFloor(sizes []int64, centroids *kmeans.Matrix, fl Floor, what string) ([]int, []Cohort, error) {
	if fl.MinSize < 1 {
		return nil, nil, fmt.Errorf("%w: cohort floor min_size %d must be at least 1", ErrConfig, fl.MinSize)
	}
	if fl.Small != "merge" && fl.Small != "suppress" {
		return nil, nil, fmt.Errorf("%w: cohort floor small: %q (want merge or suppress)", ErrConfig, fl.Small)
	}
	k := len(sizes)
	into := make([]int, k)
	size := append([]int64(nil), sizes...)
	alive := make([]bool, k)
	for c := range k {
		into[c], alive[c] = c, true
	}
	notes := make([][]string, k)
	for {
		small := -1
		n := 0
		for c := range k {
			if alive[c] {
				n++
				if size[c] < int64(fl.MinSize) && (small < 0 || size[c] < size[small]) {
					small = c
				}
			}
		}
		if small < 0 {
			break
		}
		alive[small] = false
		if fl.Small == "suppress" || n == 1 {
			into[small] = -1
			continue
		}
		best, bestD := -1, math.Inf(1)
		for c := range k {
			if alive[c] {
				if d := kmeans.SquaredDistance(centroids.Row(small), centroids.Row(c)); d < bestD {
					best, bestD = c, d
				}
			}
		}
		size[best] += size[small]
		into[small] = best
		notes[best] = append(notes[best], fmt.Sprintf("absorbed a cohort with %s below the floor of %d", what, fl.MinSize))
	}
	ids := map[int]int{}
	var out []Cohort
	for c := range k {
		if alive[c] {
			ids[c] = len(out)
			out = append(out, Cohort{ID: len(out), Cluster: c, Note: strings.Join(notes[c], "; "), NoisySize: size[c]})
		}
	}
	final := make([]int, k)
	for c := range k {
		f := c
		for f >= 0 && into[f] != f {
			f = into[f]
		}
		final[c] = -1
		if f >= 0 {
			final[c] = ids[f]
		}
	}
	if len(out) == 0 {
		return final, nil, fmt.Errorf("%w: every cohort's size is below the floor of %d", ErrInput, fl.MinSize)
	}
	return final, out, nil
}

// DPProfiles describes DP cohorts from released quantities only: the
// released centres mapped back to original units, z-scores against the
// noisy-size-weighted mean and spread of the centres, and the noisy sizes.
// sumNoise is the standard deviation of the noise on each coordinate of a
// cluster's released sum (σR). A feature explains a cohort only where its
// centre differs from the mean of the centres by at least minVisible (on
// the [0, 1] scale of DP features) and by twice the noise a centre of its
// noisy size carries: with few cohorts the spread of the centres is small
// and every z-score looks large, so the z-score alone would explain
// cohorts by differences that are not there.
func DPProfiles(f *Features, cfg FeatureConfig, centres *kmeans.Matrix, cohorts []Cohort, noisy []int64, sumNoise float64) []Profile {
	caps := dpCaps(f, cfg)
	d := centres.D
	mean, sq := make([]float64, d), make([]float64, d)
	var w float64
	for c := range centres.N {
		n := float64(noisy[c])
		w += n
		for j, v := range centres.Row(c) {
			mean[j] += n * float64(v)
			sq[j] += n * float64(v) * float64(v)
		}
	}
	sd := make([]float64, d)
	for j := range d {
		mean[j] /= math.Max(w, 1)
		sd[j] = math.Sqrt(math.Max(0, sq[j]/math.Max(w, 1)-mean[j]*mean[j]))
	}
	orig := func(j int, v float64) float64 { return math.Expm1(math.Max(0, v) * math.Log1p(caps[j])) }
	var out []Profile
	for _, co := range cohorts {
		noiseAt := 2 * sumNoise / math.Max(1, float64(noisy[co.Cluster]))
		size := co.NoisySize
		p := Profile{CohortID: co.ID, Size: len(co.Members), NoisySize: &size, Centroid: map[string]float64{}, Note: co.Note}
		z := make([]float64, d)
		row := centres.Row(co.Cluster)
		for j := range d {
			v := float64(row[j])
			p.Centroid[f.Names[j].Name] = round2(orig(j, v))
			if sd[j] > 1e-12 {
				z[j] = (v - mean[j]) / sd[j]
			}
		}
		order := make([]int, d)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return math.Abs(z[order[a]]) > math.Abs(z[order[b]]) })
		for _, j := range order {
			if len(p.Top) == 4 || math.Abs(z[j]) < 0.5 {
				break
			}
			if math.Abs(float64(row[j])-mean[j]) < math.Max(minVisible, noiseAt) {
				continue
			}
			// A difference in scaled units that vanishes in original
			// units (both clipped to 0) explains nothing.
			v, pop := round2(orig(j, float64(row[j]))), round2(orig(j, mean[j]))
			if v == pop {
				continue
			}
			p.Top = append(p.Top, TopFeature{Feature: f.Names[j].Name, Description: f.Names[j].Description, Z: round2(z[j]), Value: v, Population: pop})
		}
		p.Explanation = explain(p.Top, f.Names)
		out = append(out, p)
	}
	return out
}

// minVisible is the smallest difference between a DP cohort's centre and
// the mean of the centres, on the [0, 1] scale of DP features, that
// explains the cohort: 0.05 is a factor of about 1.4 in a count (cap
// 1000) and 1.5 in days since the last purchase.
const minVisible = 0.05

// ApplyFloor turns k-means labels into cohorts of at least MinSize
// subjects: the smallest cohort below the floor is merged into the cohort
// with the nearest centroid, or suppressed (its subjects get no cohort),
// until none is below. It returns the cohorts and the suppressed rows.
func ApplyFloor(x *kmeans.Matrix, labels []int32, k int, fl Floor) ([]Cohort, []int, error) {
	if fl.MinSize < 1 {
		return nil, nil, fmt.Errorf("%w: cohort floor min_size %d must be at least 1", ErrConfig, fl.MinSize)
	}
	if fl.Small != "merge" && fl.Small != "suppress" {
		return nil, nil, fmt.Errorf("%w: cohort floor small: %q (want merge or suppress)", ErrConfig, fl.Small)
	}
	members := make([][]int, k)
	for i, l := range labels {
		members[l] = append(members[l], i)
	}
	notes := make([][]string, k)
	alive := make([]bool, k)
	for c := range k {
		alive[c] = len(members[c]) > 0
	}
	centroid := func(c int) []float64 {
		m := make([]float64, x.D)
		for _, i := range members[c] {
			for j, v := range x.Row(i) {
				m[j] += float64(v)
			}
		}
		for j := range m {
			m[j] /= float64(len(members[c]))
		}
		return m
	}
	var suppressed []int
	for {
		small, size := -1, math.MaxInt
		aliveCount := 0
		for c := range k {
			if !alive[c] {
				continue
			}
			aliveCount++
			if n := len(members[c]); n < fl.MinSize && n < size {
				small, size = c, n
			}
		}
		if small < 0 {
			break
		}
		if fl.Small == "suppress" || aliveCount == 1 {
			suppressed = append(suppressed, members[small]...)
			members[small], alive[small] = nil, false
			continue
		}
		ms := centroid(small)
		best, bestD := -1, math.Inf(1)
		for c := range k {
			if c == small || !alive[c] {
				continue
			}
			mc := centroid(c)
			var d float64
			for j := range ms {
				d += (ms[j] - mc[j]) * (ms[j] - mc[j])
			}
			if d < bestD {
				best, bestD = c, d
			}
		}
		members[best] = append(members[best], members[small]...)
		notes[best] = append(notes[best], fmt.Sprintf("absorbed a cohort of %d subjects below the floor of %d", len(members[small]), fl.MinSize))
		members[small], alive[small] = nil, false
	}
	var out []Cohort
	for c := range k {
		if alive[c] {
			sort.Ints(members[c])
			out = append(out, Cohort{ID: len(out), Cluster: c, Members: members[c], Note: strings.Join(notes[c], "; ")})
		}
	}
	if len(out) == 0 {
		return nil, suppressed, fmt.Errorf("%w: fewer subjects than the cohort floor of %d: no cohort can be exported", ErrInput, fl.MinSize)
	}
	return out, suppressed, nil
}

// Profile describes a cohort for people.
type Profile struct {
	CohortID int `json:"cohort_id"`
	// Size is exact: with noisy sizes it is left out of the release (0)
	// and kept in the steward report.
	Size        int                `json:"size,omitempty"`
	NoisySize   *int64             `json:"noisy_size,omitempty"`
	Centroid    map[string]float64 `json:"centroid"` // mean of each feature in original units
	Top         []TopFeature       `json:"top_features"`
	Explanation string             `json:"explanation"`
	Note        string             `json:"note,omitempty"`
}

// TopFeature is a feature that sets a cohort apart.
type TopFeature struct {
	Feature     string  `json:"feature"`
	Description string  `json:"description"`
	Z           float64 `json:"standardized_difference"` // cohort mean minus population mean, in population standard deviations
	Value       float64 `json:"value"`                   // cohort mean in original units
	Population  float64 `json:"population"`              // population mean in original units
}

// Profiles describes every cohort: its centroid in original units, the
// features that set it apart most (standardized difference from the
// population of at least 0.5), and a sentence built from them.
func Profiles(f *Features, cohorts []Cohort) []Profile {
	d := f.Raw.D
	pop := make([]float64, d)
	for i := range f.Raw.N {
		for j, v := range f.Raw.Row(i) {
			pop[j] += float64(v)
		}
	}
	for j := range pop {
		pop[j] /= float64(f.Raw.N)
	}
	var out []Profile
	for _, c := range cohorts {
		raw := make([]float64, d)
		z := make([]float64, d)
		for _, i := range c.Members {
			for j := range d {
				raw[j] += float64(f.Raw.Data[i*d+j])
				z[j] += float64(f.X.Data[i*d+j])
			}
		}
		p := Profile{CohortID: c.ID, Size: len(c.Members), Centroid: map[string]float64{}, Note: c.Note}
		for j := range d {
			raw[j] /= float64(len(c.Members))
			z[j] /= float64(len(c.Members))
			p.Centroid[f.Names[j].Name] = round2(raw[j])
		}
		order := make([]int, d)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return math.Abs(z[order[a]]) > math.Abs(z[order[b]]) })
		for _, j := range order {
			if len(p.Top) == 4 || math.Abs(z[j]) < 0.5 {
				break
			}
			if round2(raw[j]) == round2(pop[j]) {
				continue // no difference to show
			}
			p.Top = append(p.Top, TopFeature{Feature: f.Names[j].Name, Description: f.Names[j].Description, Z: round2(z[j]), Value: round2(raw[j]), Population: round2(pop[j])})
		}
		p.Explanation = explain(p.Top, f.Names)
		out = append(out, p)
	}
	return out
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// explain turns the top features into one sentence.
func explain(top []TopFeature, names []Feature) string {
	var parts []string
	for _, t := range top {
		high := t.Z > 0
		strong := math.Abs(t.Z) >= 1
		switch t.Feature {
		case "recency_days":
			if high && t.Value >= 0.8*t.Population*1.5 {
				parts = append(parts, "has not bought for a long time, if ever")
			} else if high {
				parts = append(parts, fmt.Sprintf("has not bought for about %.0f days", t.Value))
			} else {
				parts = append(parts, fmt.Sprintf("bought recently (about %.0f days ago on average)", t.Value))
			}
		case "purchases":
			if high {
				parts = append(parts, fmt.Sprintf("buys often (%.1f purchases vs %.1f overall)", t.Value, t.Population))
			} else {
				parts = append(parts, "rarely buys")
			}
		case "net_spend":
			switch {
			case high && strong:
				parts = append(parts, fmt.Sprintf("spends well above average (%.0f vs %.0f)", t.Value, t.Population))
			case high:
				parts = append(parts, "spends above average")
			default:
				parts = append(parts, "spends below average")
			}
		case "views":
			if high {
				parts = append(parts, "browses a lot")
			} else {
				parts = append(parts, "browses little")
			}
		case "carts":
			if high {
				parts = append(parts, "often adds to the cart")
			} else {
				parts = append(parts, "seldom adds to the cart")
			}
		case "returns":
			if high {
				parts = append(parts, "returns often")
			} else {
				parts = append(parts, "rarely returns")
			}
		default: // category buckets: the description is the main category
			if high {
				parts = append(parts, fmt.Sprintf("shops for %s often", t.Description))
			} else {
				parts = append(parts, fmt.Sprintf("rarely shops for %s", t.Description))
			}
		}
	}
	if len(parts) == 0 {
		return "Close to the average customer."
	}
	s := strings.Join(parts, "; ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}
