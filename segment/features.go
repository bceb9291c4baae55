package segment

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
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
// the order of reading).
func BuildFeatures(ctx context.Context, pol *privacy.Policy, flt *privacy.Filter, events dataset.Ref, cfg FeatureConfig, logicalDate time.Time, workers int) (*Features, error) {
	if cfg.CategoryBuckets < 1 || cfg.CategoryBuckets > 1024 {
		return nil, fmt.Errorf("%w: category_buckets %d must be in [1, 1024]", ErrConfig, cfg.CategoryBuckets)
	}
	if cfg.MaxEvents < 1 {
		return nil, fmt.Errorf("%w: max_events_per_subject %d must be at least 1", ErrConfig, cfg.MaxEvents)
	}
	cols := []string{"event_type", "category", "value", "region"}
	end := logicalDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1).UnixMicro()
	type ev struct {
		key   uint64
		typ   uint8
		cat   int32 // bucket, -1 none
		value float32
		at    int64
	}
	// Pass 1: events per subject.
	var mu sync.Mutex
	counts := map[string]int32{}
	scan := func(fn func(b *dataset.Batch, keep []bool)) error {
		sc, err := privacy.FilteredScan(ctx, pol, flt, events, cols)
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
	err := scan(func(b *dataset.Batch, keep []bool) {
		subj := b.Column("subject_id").Str
		local := make([]int32, len(subj.Dict))
		for i, x := range subj.Index {
			if keep[i] {
				local[x]++
			}
		}
		mu.Lock()
		for x, n := range local {
			if n > 0 {
				counts[subj.Dict[x]] += n
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	firstPass := flt.Report()
	if len(counts) == 0 {
		return nil, fmt.Errorf("%w: no consented events in the window (%d rows read, %d kept)", ErrInput, firstPass.RowsRead, firstPass.RowsKept)
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
	d := numFixed + nb
	raw := NewMatrix(len(subjects), d)
	last := make([]int64, len(subjects))
	regions := make([]string, len(subjects))
	for i := range last {
		last[i] = math.MinInt64
	}
	heavy := map[int32][]ev{}
	bucketNames := make([]map[string]int64, nb)
	for i := range bucketNames {
		bucketNames[i] = map[string]int64{}
	}
	hashKey := func(subject string, at int64, typ, item uint32) uint64 {
		h := fnv.New64a()
		var buf [8]byte
		for i := range 8 {
			buf[i] = byte(cfg.Seed >> (8 * i))
		}
		h.Write(buf[:])
		h.Write([]byte(subject))
		for i := range 8 {
			buf[i] = byte(uint64(at) >> (8 * i))
		}
		h.Write(buf[:])
		h.Write([]byte{byte(typ), byte(item), byte(item >> 8), byte(item >> 16)})
		return h.Sum64()
	}
	var used int64
	add := func(r int32, e ev) {
		f := raw.Row(int(r))
		switch e.typ {
		case 0:
			f[fViews]++
		case 1:
			f[fCarts]++
		case 2:
			f[fPurchases]++
			f[fMonetary] += e.value
			last[r] = max(last[r], e.at)
		case 3:
			f[fReturns]++
			f[fMonetary] += e.value // negative
		}
		if e.cat >= 0 {
			f[numFixed+int(e.cat)]++
		}
		used++
	}
	err = scan(func(b *dataset.Batch, keep []bool) {
		subj, typ, cat := b.Column("subject_id").Str, b.Column("event_type").Str, b.Column("category").Str
		reg := b.Column("region").Str
		val, at := b.Column("value"), b.Column("event_time").Int
		types := make([]uint8, len(typ.Dict))
		for i, t := range typ.Dict {
			switch t {
			case "view":
				types[i] = 0
			case "add_to_cart":
				types[i] = 1
			case "purchase":
				types[i] = 2
			case "return":
				types[i] = 3
			default:
				types[i] = 255
			}
		}
		buckets := make([]int32, len(cat.Dict))
		local := make([]map[string]int64, nb)
		for i, c := range cat.Dict {
			h := fnv.New32a()
			h.Write([]byte(c))
			buckets[i] = int32(h.Sum32() % uint32(nb))
		}
		rows := make([]int32, len(subj.Dict))
		for i, s := range subj.Dict {
			rows[i] = -1
			if r, ok := row[s]; ok {
				rows[i] = r
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for i, x := range subj.Index {
			if !keep[i] || rows[x] < 0 || types[typ.Index[i]] == 255 {
				continue
			}
			if r := rows[x]; regions[r] == "" && len(reg.Index) > i && reg.Index[i] >= 0 {
				regions[r] = reg.Dict[reg.Index[i]]
			}
			e := ev{typ: types[typ.Index[i]], cat: -1, at: at[i]}
			if c := cat.Index[i]; c >= 0 {
				e.cat = buckets[c]
				if local[e.cat] == nil {
					local[e.cat] = map[string]int64{}
				}
				local[e.cat][cat.Dict[c]]++
			}
			if !val.Null(i) {
				e.value = float32(val.Float[i])
			}
			r := rows[x]
			if counts[subj.Dict[x]] <= int32(cfg.MaxEvents) {
				add(r, e)
				continue
			}
			e.key = hashKey(subj.Dict[x], at[i], uint32(e.typ), uint32(typ.Index[i]))
			heavy[r] = append(heavy[r], e)
			if len(heavy[r]) > 2*cfg.MaxEvents {
				slices.SortFunc(heavy[r], func(a, b ev) int { return cmpU64(a.key, b.key) })
				heavy[r] = heavy[r][:cfg.MaxEvents]
			}
		}
		for j, m := range local {
			for name, n := range m {
				bucketNames[j][name] += n
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for r, evs := range heavy {
		slices.SortFunc(evs, func(a, b ev) int { return cmpU64(a.key, b.key) })
		for _, e := range evs[:min(len(evs), cfg.MaxEvents)] {
			add(r, e)
		}
	}
	// Recency: days from the last purchase to the end of the logical day;
	// subjects without a purchase in the window get the window's length.
	windowDays := float32(math.Ceil(float64(end-flt.RetentionStart().UnixMicro()) / 86400e6))
	for i := range subjects {
		f := raw.Row(i)
		if last[i] == math.MinInt64 {
			f[fRecency] = windowDays
		} else {
			f[fRecency] = float32(float64(end-last[i]) / 86400e6)
		}
		f[fMonetary] = max(0, f[fMonetary])
	}
	names := []Feature{
		{"recency_days", "days since the last purchase", "days"},
		{"purchases", "purchases", "count"},
		{"net_spend", "spend net of returns", "money"},
		{"views", "product views", "count"},
		{"carts", "products added to the cart", "count"},
		{"returns", "returns", "count"},
	}
	for b := range nb {
		top, n := "", int64(-1)
		for name, c := range bucketNames[b] {
			if c > n || (c == n && name < top) {
				top, n = name, c
			}
		}
		if top == "" {
			top = fmt.Sprintf("bucket %d", b)
		}
		names = append(names, Feature{Name: fmt.Sprintf("category_%02d", b), Description: top, Kind: "count"})
	}
	f := &Features{Subjects: subjects, Names: names, Raw: raw, Events: used, Bounded: len(heavy), Filter: firstPass, Regions: regions}
	f.standardize()
	return f, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
			if sd > 1e-12 {
				f.X.Data[i*d+j] = float32((transform(f.Raw.Data[i*d+j]) - m) / sd)
			}
		}
	}
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
