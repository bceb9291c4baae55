package segment

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// FeatureConfig says how per-subject features are built.
type FeatureConfig struct {
	CategoryBuckets int `yaml:"category_buckets"` // hashed category dimensions (default 32)
	// MaxEvents bounds each subject's contribution: at most this many
	// events, chosen uniformly at random (by a seeded hash), are used.
	MaxEvents int    `yaml:"max_events_per_subject"`
	Seed      uint64 `yaml:"seed"`
}

// DefaultFeatureConfig returns 32 category buckets and 1000 events per
// subject.
func DefaultFeatureConfig() FeatureConfig {
	return FeatureConfig{CategoryBuckets: 32, MaxEvents: 1000, Seed: 1}
}

// Feature names one column of the feature matrix.
type Feature struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Kind says how to read the original value: "days", "count",
	// "money", "share".
	Kind string `json:"kind"`
}

// Features is the feature matrix of the subjects of a window.
type Features struct {
	Subjects []string  // row i is Subjects[i]
	Names    []Feature // column j is Names[j]
	Raw      *Matrix   // original units
	X        *Matrix   // log1p where counted, standardized: what k-means sees
	Mean     []float64 // of the log1p values, per column
	Std      []float64
	Events   int64 // events used after contribution bounding
	Bounded  int   // subjects whose events were sampled down
	// Filter is the consent filter's report of the first pass over the
	// events (the second pass reads the same rows again).
	Filter privacy.Report
	// Regions holds each subject's region (ISO 3166 code of its events;
	// "" when unknown), for the composition report, never a feature.
	Regions []string
}

// The fixed feature columns; category buckets follow.
const (
	fRecency   = iota // days since the last purchase
	fPurchases        // purchase events (frequency)
	fMonetary         // spend net of returns
	fViews
	fCarts
	fReturns
	numFixed
)

// BuildFeatures computes features from the events the filter keeps, in the
// window the filter allows. Two passes: the first counts each subject's
// events, the second aggregates, keeping for subjects above MaxEvents the
// events with the smallest seeded hash (a uniform sample, independent of
// the order of reading). The result does not depend on the number of
// workers or the layout of the files: see partial.go.
func BuildFeatures(ctx context.Context, pol *privacy.Policy, flt *privacy.Filter, events dataset.Ref, cfg FeatureConfig, logicalDate time.Time, workers int) (*Features, error) {
	dec, err := NewEventDecoder(cfg)
	if err != nil {
		return nil, err
	}
	// Pass 1: events per subject.
	var mu sync.Mutex
	counts := map[string]int32{}
	scan := func(fn func(b *dataset.Batch, keep []bool)) error {
		sc, err := privacy.FilteredScan(ctx, pol, flt, events, dec.Columns())
		if err != nil {
			return err
		}
		defer sc.Close()
		keeps := make([][]bool, max(1, workers))
		return sc.Run(ctx, workers, func(w int, _ dataset.Unit, b *dataset.Batch) error {
			var err error
			if keeps[w], err = flt.Apply(b, keeps[w]); err != nil {
				return err
			}
			fn(b, keeps[w])
			return nil
		})
	}
	err = scan(func(b *dataset.Batch, keep []bool) {
		dict := b.Column("subject_id").Str.Dict
		local := make([]int32, len(dict))
		dec.Decode(b, keep, func(x int32, _ FeatureEvent, _, _ string) { local[x]++ })
		mu.Lock()
		for x, n := range local {
			if n > 0 {
				counts[dict[x]] += n
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	firstPass := flt.Report()
	if len(counts) == 0 {
		// No count: in a DP run this error follows the spend and goes to
		// stderr, lineage and the audit log.
		return nil, fmt.Errorf("%w: no consented events in the window (no row kept by consent, erasure and retention)", ErrInput)
	}
	subjects := make([]string, 0, len(counts))
	for s := range counts {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	row := make(map[string]int32, len(subjects))
	for i, s := range subjects {
		row[s] = int32(i)
	}
	// Pass 2: aggregate; heavy subjects keep a bounded sample.
	nb := cfg.CategoryBuckets
	raw := NewMatrix(len(subjects), numFixed+nb)
	money := make([]int64, len(subjects))
	last := make([]int64, len(subjects))
	regions := make([]string, len(subjects))
	regionAt := make([]int64, len(subjects))
	for i := range last {
		last[i] = math.MinInt64
	}
	heavy := map[int32]*SubjectPartial{}
	bucketNames := make([]map[string]int64, nb)
	for i := range bucketNames {
		bucketNames[i] = map[string]int64{}
	}
	var used int64
	err = scan(func(b *dataset.Batch, keep []bool) {
		dict := b.Column("subject_id").Str.Dict
		rows := make([]int32, len(dict))
		for i, s := range dict {
			rows[i] = -1
			if r, ok := row[s]; ok {
				rows[i] = r
			}
		}
		type item struct {
			r        int32
			e        FeatureEvent
			region   string
			category string
		}
		var items []item
		dec.Decode(b, keep, func(x int32, e FeatureEvent, region, category string) {
			if r := rows[x]; r >= 0 {
				if counts[dict[x]] > int32(cfg.MaxEvents) {
					e.Key = dec.Key(dict[x], e)
				}
				items = append(items, item{r, e, region, category})
			}
		})
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			r := it.r
			if laterRegion(it.e.At, it.region, regionAt[r], regions[r]) {
				regionAt[r], regions[r] = it.e.At, it.region
			}
			if it.category != "" {
				bucketNames[it.e.Cat][it.category]++
			}
			if counts[subjects[r]] <= int32(cfg.MaxEvents) {
				accumulate(raw.Row(int(r)), &money[r], &last[r], it.e)
				used++
				continue
			}
			p := heavy[r]
			if p == nil {
				p = &SubjectPartial{}
				heavy[r] = p
			}
			p.Add(it.e, "", cfg.MaxEvents)
		}
	})
	if err != nil {
		return nil, err
	}
	for r, p := range heavy {
		p.Normalize(cfg.MaxEvents)
		for _, e := range p.Sample {
			accumulate(raw.Row(int(r)), &money[r], &last[r], e)
			used++
		}
	}
	end, windowDays := featureWindow(flt, logicalDate)
	for i := range subjects {
		finishRow(raw.Row(i), money[i], last[i], end, windowDays)
	}
	f := &Features{Subjects: subjects, Names: featureNames(bucketNames), Raw: raw, Events: used, Bounded: len(heavy), Filter: firstPass, Regions: regions}
	f.standardize()
	return f, nil
}

// transform maps a raw value to the value k-means sees before
// standardization: log1p for counts, money and days.
func transform(v float32) float64 { return math.Log1p(math.Max(0, float64(v))) }

// standardize fills X, Mean and Std. A column with no variance is kept at
// zero (it carries no information) rather than divided by zero.
func (f *Features) standardize() {
	n, d := f.Raw.N, f.Raw.D
	f.X = NewMatrix(n, d)
	f.Mean = make([]float64, d)
	f.Std = make([]float64, d)
	for j := range d {
		var s, s2 float64
		for i := range n {
			v := transform(f.Raw.Data[i*d+j])
			s += v
			s2 += v * v
		}
		m := s / float64(n)
		sd := math.Sqrt(math.Max(0, s2/float64(n)-m*m))
		f.Mean[j], f.Std[j] = m, sd
		for i := range n {
			f.X.Data[i*d+j] = standardized(f.Raw.Data[i*d+j], m, sd)
		}
	}
}

// standardized is a raw value as k-means sees it, given its column's mean
// and deviation after transform; 0 in a column without variance.
func standardized(v float32, mean, sd float64) float32 {
	if sd > 1e-12 {
		return float32((transform(v) - mean) / sd)
	}
	return 0
}

// dpCaps are the data-independent scales of DP features: each raw value is
// mapped to log1p(min(v, cap)) / log1p(cap), in [0, 1].
func dpCaps(f *Features, cfg FeatureConfig) []float64 {
	caps := make([]float64, len(f.Names))
	for j, n := range f.Names {
		switch n.Kind {
		case "days":
			caps[j] = 3660
		case "money":
			caps[j] = 100000
		default:
			caps[j] = float64(cfg.MaxEvents)
		}
	}
	return caps
}

// ScaledForDP returns the features scaled with data-independent constants
// (see dpCaps), as DP k-means needs: standardizing with the data's own mean
// and deviation would be an unaccounted release.
func (f *Features) ScaledForDP(cfg FeatureConfig) *Matrix {
	caps := dpCaps(f, cfg)
	x := NewMatrix(f.Raw.N, f.Raw.D)
	for i := range f.Raw.N {
		for j := range f.Raw.D {
			v := math.Min(float64(f.Raw.Data[i*f.Raw.D+j]), caps[j])
			x.Data[i*x.D+j] = float32(math.Log1p(math.Max(0, v)) / math.Log1p(caps[j]))
		}
	}
	return x
}
