package segment

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment/kmeans"
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
	Subjects []string       // row i is Subjects[i]
	Names    []Feature      // column j is Names[j]
	Raw      *kmeans.Matrix // original units
	X        *kmeans.Matrix // log1p where counted, standardized: what k-means sees
	Mean     []float64      // of the log1p values, per column
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
// window the filter allows. Two passes: the first applies the filter and
// counts each subject's events (decoding only the subject, the time and
// the type), the second aggregates, keeping for subjects above MaxEvents
// the events with the smallest seeded hash (a uniform sample, independent
// of the order of reading). Each worker aggregates into partials of its own,
// merged at the end. The result does not depend on the number of workers or
// the layout of the files: see partial.go.
func BuildFeatures(ctx context.Context, pol *privacy.Policy, flt *privacy.Filter, events dataset.Ref, cfg FeatureConfig, logicalDate time.Time, workers int) (*Features, error) {
	dec, err := NewEventDecoder(cfg)
	if err != nil {
		return nil, err
	}
	workers = max(1, workers)
	scan := func(cols []string, fn func(w int, u dataset.Unit, b *dataset.Batch) error) error {
		sc, err := privacy.FilteredScan(ctx, pol, flt, events, cols)
		if err != nil {
			return err
		}
		defer sc.Close()
		return sc.Run(ctx, workers, fn)
	}
	// Pass 1: the filter's decisions and counts; events per subject. Each
	// subject gets an id in order of first sight, and each unit remembers
	// the id of every entry of its subject dictionary, so that pass 2 maps
	// the (same) dictionary to rows without hashing a string.
	var mu sync.Mutex
	ids := map[string]int32{}
	var counts []int32
	unitIDs := map[dataset.Unit][]int32{}
	keeps := make([][]bool, workers)
	locals := make([][]int32, workers)
	err = scan([]string{"event_type"}, func(w int, u dataset.Unit, b *dataset.Batch) error {
		var err error
		if keeps[w], err = flt.Apply(b, keeps[w]); err != nil {
			return err
		}
		dict := b.Column("subject_id").Str.Dict
		local := slices.Grow(locals[w][:0], len(dict))[:len(dict)]
		clear(local)
		locals[w] = local
		dec.Count(b, keeps[w], local)
		uids := make([]int32, len(dict))
		mu.Lock()
		defer mu.Unlock()
		for x, n := range local {
			uids[x] = -1
			if n == 0 {
				continue
			}
			id, ok := ids[dict[x]]
			if !ok {
				id = int32(len(counts))
				ids[dict[x]] = id
				counts = append(counts, 0)
			}
			counts[id] += n
			uids[x] = id
		}
		unitIDs[u] = uids
		return nil
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
	subjects := make([]string, 0, len(ids))
	for s := range ids {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	rowOf := make([]int32, len(counts)) // id -> row
	heavy := make([]bool, len(subjects))
	for i, s := range subjects {
		id := ids[s]
		rowOf[id] = int32(i)
		heavy[i] = counts[id] > int32(cfg.MaxEvents)
	}
	ids = nil
	// Pass 2: aggregate; heavy subjects keep a bounded sample. Every
	// subject with a row passed the consent decision of pass 1 (decisions are
	// per subject), so a row of theirs is kept when its time is in the
	// filter's window; the filter need not run again.
	from, end := flt.RetentionStart().UnixMicro(), flt.End().UnixMicro()
	accs := make([]*featureAcc, workers)
	for w := range accs {
		accs[w] = newFeatureAcc(len(subjects), cfg.CategoryBuckets)
	}
	err = scan(dec.Columns(), func(w int, u dataset.Unit, b *dataset.Batch) error {
		a := accs[w]
		subj, times := b.Column("subject_id").Str, b.Column("event_time").Int
		reg, cat := b.Column("region").Str, b.Column("category").Str
		mu.Lock()
		uids := unitIDs[u]
		delete(unitIDs, u)
		mu.Unlock()
		if len(uids) != len(subj.Dict) {
			return fmt.Errorf("%w: row group %d of file %d: %d subjects, %d when first read (changed while being read)", dataset.ErrCorrupt, u.RowGroup, u.File, len(subj.Dict), len(uids))
		}
		rows := slices.Grow(a.rows[:0], len(subj.Dict))[:len(subj.Dict)]
		for x, id := range uids {
			rows[x] = -1
			if id >= 0 {
				rows[x] = rowOf[id]
			}
		}
		a.rows = rows
		keep := slices.Grow(a.keep[:0], len(subj.Index))[:len(subj.Index)]
		for i, x := range subj.Index {
			t := times[i]
			keep[i] = rows[x] >= 0 && t >= from && t < end
		}
		a.keep = keep
		cats := slices.Grow(a.cats[:0], len(cat.Dict))[:len(cat.Dict)]
		clear(cats)
		a.cats = cats
		dec.DecodeIndexed(b, keep, func(x int32, e FeatureEvent, rg, c int32) {
			r := rows[x]
			if rg >= 0 {
				if region := reg.Dict[rg]; laterRegion(e.At, region, a.regionAt[r], a.regions[r]) {
					a.regionAt[r], a.regions[r] = e.At, region
				}
			}
			if c >= 0 {
				cats[c]++
			}
			if !heavy[r] {
				accumulate(a.raw.Row(int(r)), &a.money[r], &a.last[r], e)
				a.used++
				return
			}
			e.Key = dec.Key(subj.Dict[x], e)
			p := a.heavy[r]
			if p == nil {
				p = &SubjectPartial{}
				a.heavy[r] = p
			}
			p.Add(e, "", cfg.MaxEvents)
		})
		buckets := dec.buckets(cat.Dict)
		for c, n := range cats {
			if n > 0 && cat.Dict[c] != "" {
				a.names[buckets[c]][cat.Dict[c]] += n
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	a := accs[0]
	for _, o := range accs[1:] {
		a.merge(o, cfg.MaxEvents)
	}
	raw := a.raw
	for r, p := range a.heavy {
		p.Normalize(cfg.MaxEvents)
		for _, e := range p.Sample {
			accumulate(raw.Row(int(r)), &a.money[r], &a.last[r], e)
			a.used++
		}
	}
	end, windowDays := featureWindow(flt, logicalDate)
	for i := range subjects {
		finishRow(raw.Row(i), a.money[i], a.last[i], end, windowDays)
	}
	f := &Features{Subjects: subjects, Names: featureNames(a.names), Raw: raw, Events: a.used, Bounded: len(a.heavy), Filter: firstPass, Regions: a.regions}
	f.standardize()
	return f, nil
}

// featureAcc is one worker's aggregates of pass 2 of BuildFeatures, by
// subject row. Every part merges exactly and in any order: counts are
// whole numbers (exact in float32 below 2^24), money is in millionths, the
// region and the heavy samples are chosen by a total order.
type featureAcc struct {
	raw      *kmeans.Matrix
	money    []int64
	last     []int64
	regions  []string
	regionAt []int64
	heavy    map[int32]*SubjectPartial
	names    []map[string]int64 // bucket -> category -> events
	used     int64

	rows []int32 // scratch: subject dictionary entry -> row, -1 for none
	keep []bool  // scratch: rows kept
	cats []int64 // scratch: events per category dictionary entry
}

func newFeatureAcc(subjects, buckets int) *featureAcc {
	a := &featureAcc{
		raw:      kmeans.NewMatrix(subjects, numFixed+buckets),
		money:    make([]int64, subjects),
		last:     make([]int64, subjects),
		regions:  make([]string, subjects),
		regionAt: make([]int64, subjects),
		heavy:    map[int32]*SubjectPartial{},
		names:    make([]map[string]int64, buckets),
	}
	for i := range a.last {
		a.last[i] = math.MinInt64
	}
	for i := range a.names {
		a.names[i] = map[string]int64{}
	}
	return a
}

// merge adds o's aggregates to a.
func (a *featureAcc) merge(o *featureAcc, maxEvents int) {
	for i, v := range o.raw.Data {
		a.raw.Data[i] += v
	}
	for r := range a.money {
		a.money[r] += o.money[r]
		a.last[r] = max(a.last[r], o.last[r])
		if laterRegion(o.regionAt[r], o.regions[r], a.regionAt[r], a.regions[r]) {
			a.regionAt[r], a.regions[r] = o.regionAt[r], o.regions[r]
		}
	}
	for r, q := range o.heavy {
		if p := a.heavy[r]; p != nil {
			p.Merge(q, maxEvents)
		} else {
			a.heavy[r] = q
		}
	}
	for b, m := range o.names {
		for name, n := range m {
			a.names[b][name] += n
		}
	}
	a.used += o.used
}

// transform maps a raw value to the value k-means sees before
// standardization: log1p for counts, money and days.
func transform(v float32) float64 { return math.Log1p(math.Max(0, float64(v))) }

// standardize fills X, Mean and Std. A column with no variance is kept at
// zero (it carries no information) rather than divided by zero.
func (f *Features) standardize() {
	n, d := f.Raw.N, f.Raw.D
	f.X = kmeans.NewMatrix(n, d)
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
func (f *Features) ScaledForDP(cfg FeatureConfig) *kmeans.Matrix {
	caps := dpCaps(f, cfg)
	x := kmeans.NewMatrix(f.Raw.N, f.Raw.D)
	for i := range f.Raw.N {
		for j := range f.Raw.D {
			v := math.Min(float64(f.Raw.Data[i*f.Raw.D+j]), caps[j])
			x.Data[i*x.D+j] = float32(math.Log1p(math.Max(0, v)) / math.Log1p(caps[j]))
		}
	}
	return x
}
