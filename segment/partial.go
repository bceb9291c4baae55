package segment

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// The pieces of feature building that a distributed engine runs apart:
// decoding the rows of one row group into events, a per-subject partial
// that merges in any order, and the row of features a subject's events
// make. BuildFeatures uses the same pieces on one machine, so both give
// the same features to the bit: every sum is exact (counts, and money in
// millionths) and every choice (the sample of a heavy subject, its region)
// depends on the events only, never on the order they are read in.

// FeatureEvent is one event as the features see it.
type FeatureEvent struct {
	Key    uint64 // seeded hash: a heavy subject keeps its smallest keys
	Type   uint8  // 0 view, 1 add_to_cart, 2 purchase, 3 return
	Cat    int32  // category bucket, -1 for none
	Micros int64  // value in millionths (spend; negative for returns)
	At     int64  // µs since the epoch
}

// compareEvents is a total order on events (key first), so that the
// events a bounded sample keeps are the same in any reading order.
func compareEvents(a, b FeatureEvent) int {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.At, b.At), cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Cat, b.Cat), cmp.Compare(a.Micros, b.Micros))
}

// EventDecoder turns the rows of a batch (subject_id, event_time,
// event_type, category, value, region) into FeatureEvents.
type EventDecoder struct {
	cfg FeatureConfig
}

// featureColumns are the event columns features read besides subject_id
// and event_time.
var featureColumns = []string{"event_type", "category", "value", "region"}

// NewEventDecoder checks cfg and returns its decoder.
func NewEventDecoder(cfg FeatureConfig) (*EventDecoder, error) {
	if cfg.CategoryBuckets < 1 || cfg.CategoryBuckets > 1024 {
		return nil, fmt.Errorf("%w: category_buckets %d must be in [1, 1024]", ErrConfig, cfg.CategoryBuckets)
	}
	if cfg.MaxEvents < 1 {
		return nil, fmt.Errorf("%w: max_events_per_subject %d must be at least 1", ErrConfig, cfg.MaxEvents)
	}
	return &EventDecoder{cfg: cfg}, nil
}

// Columns returns the event columns the decoder reads.
func (d *EventDecoder) Columns() []string { return featureColumns }

// unknownType marks an event type that features do not count.
const unknownType = 255

// eventTypes maps each entry of an event_type dictionary to its
// FeatureEvent.Type, unknownType for the types features do not count.
func eventTypes(dict []string) []uint8 {
	types := make([]uint8, len(dict))
	for i, t := range dict {
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
			types[i] = unknownType
		}
	}
	return types
}

// Count adds to counts[x] the number of kept rows of a known event type of
// the subject at index x of the batch's subject dictionary. It needs only
// the subject_id and event_type columns; counts must be as long as the
// dictionary.
func (d *EventDecoder) Count(b *dataset.Batch, keep []bool, counts []int32) {
	subj, typ := b.Column("subject_id").Str, b.Column("event_type").Str
	types := eventTypes(typ.Dict)
	for i, x := range subj.Index {
		if t := typ.Index[i]; keep[i] && t >= 0 && types[t] != unknownType {
			counts[x]++
		}
	}
}

// Decode calls fn for every kept row of a known event type with the
// subject's index in the batch's subject dictionary, the event (without
// its Key: see Key), the row's region and its category name ("" for none).
func (d *EventDecoder) Decode(b *dataset.Batch, keep []bool, fn func(subj int32, e FeatureEvent, region, category string)) {
	reg, cat := b.Column("region").Str, b.Column("category").Str
	d.DecodeIndexed(b, keep, func(x int32, e FeatureEvent, r, c int32) {
		region, category := "", ""
		if r >= 0 {
			region = reg.Dict[r]
		}
		if c >= 0 {
			category = cat.Dict[c]
		}
		fn(x, e, region, category)
	})
}

// DecodeIndexed is Decode with the region and the category as indices into
// their columns' dictionaries (-1 for none), so that a caller can count
// them per dictionary entry rather than per row.
func (d *EventDecoder) DecodeIndexed(b *dataset.Batch, keep []bool, fn func(subj int32, e FeatureEvent, region, category int32)) {
	subj, typ, cat := b.Column("subject_id").Str, b.Column("event_type").Str, b.Column("category").Str
	reg := b.Column("region").Str
	val, at := b.Column("value"), b.Column("event_time").Int
	types := eventTypes(typ.Dict)
	buckets := d.buckets(cat.Dict)
	for i, x := range subj.Index {
		if !keep[i] || typ.Index[i] < 0 || types[typ.Index[i]] == unknownType {
			continue
		}
		e := FeatureEvent{Type: types[typ.Index[i]], Cat: -1, At: at[i]}
		c := cat.Index[i]
		if c >= 0 {
			e.Cat = buckets[c]
		}
		if !val.Null(i) {
			e.Micros = int64(math.Round(val.Float[i] * 1e6))
		}
		r := int32(-1)
		if i < len(reg.Index) {
			r = reg.Index[i]
		}
		fn(x, e, r, c)
	}
}

// buckets maps each entry of a category dictionary to its bucket.
func (d *EventDecoder) buckets(dict []string) []int32 {
	buckets := make([]int32, len(dict))
	for i, c := range dict {
		buckets[i] = categoryBucket(c, d.cfg.CategoryBuckets)
	}
	return buckets
}

// Key returns the event's sample key for a subject: a seeded hash of the
// subject, the time, the type, the category and the value.
func (d *EventDecoder) Key(subject string, e FeatureEvent) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	put := func(v uint64) {
		for i := range 8 {
			buf[i] = byte(v >> (8 * i))
		}
		h.Write(buf[:])
	}
	put(d.cfg.Seed)
	h.Write([]byte(subject))
	put(uint64(e.At))
	put(uint64(e.Micros))
	h.Write([]byte{e.Type, byte(e.Cat), byte(e.Cat >> 8)})
	return h.Sum64()
}

// laterRegion reports whether a region seen at time at replaces the one
// kept (seen at keptAt): a subject's region is that of its latest event
// with a region, the smallest code among events of the same time.
func laterRegion(at int64, region string, keptAt int64, kept string) bool {
	return region != "" && (kept == "" || at > keptAt || at == keptAt && region < kept)
}

// accumulate adds an event to a subject's raw feature row; money and last
// purchase are kept apart until finishRow.
func accumulate(f []float32, money, last *int64, e FeatureEvent) {
	switch e.Type {
	case 0:
		f[fViews]++
	case 1:
		f[fCarts]++
	case 2:
		f[fPurchases]++
		*money += e.Micros
		*last = max(*last, e.At)
	case 3:
		f[fReturns]++
		*money += e.Micros // negative
	}
	if e.Cat >= 0 {
		f[numFixed+int(e.Cat)]++
	}
}

// featureWindow returns the end of the logical day (µs) and the length of
// the filter's window in days, which recency needs.
func featureWindow(flt *privacy.Filter, logicalDate time.Time) (end int64, windowDays float32) {
	end = logicalDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1).UnixMicro()
	return end, float32(math.Ceil(float64(end-flt.RetentionStart().UnixMicro()) / 86400e6))
}

// finishRow sets recency (days from the last purchase to the end of the
// logical day; the window's length without a purchase) and net spend (never
// below zero).
func finishRow(f []float32, money, last, end int64, windowDays float32) {
	if last == math.MinInt64 {
		f[fRecency] = windowDays
	} else {
		f[fRecency] = float32(float64(end-last) / 86400e6)
	}
	f[fMonetary] = float32(max(0, float64(money)/1e6))
}

// featureNames names the columns; each category bucket by its most
// frequent category (ties: the first name).
func featureNames(bucketNames []map[string]int64) []Feature {
	names := []Feature{
		{"recency_days", "days since the last purchase", "days"},
		{"purchases", "purchases", "count"},
		{"net_spend", "spend net of returns", "money"},
		{"views", "product views", "count"},
		{"carts", "products added to the cart", "count"},
		{"returns", "returns", "count"},
	}
	for b, m := range bucketNames {
		top, n := "", int64(-1)
		for name, c := range m {
			if c > n || (c == n && name < top) {
				top, n = name, c
			}
		}
		if top == "" {
			top = fmt.Sprintf("bucket %d", b)
		}
		names = append(names, Feature{Name: fmt.Sprintf("category_%02d", b), Description: top, Kind: "count"})
	}
	return names
}

// SubjectPartial is what a part of the events says about one subject's
// features: partials of the same subject merge in any order and grouping
// to the same result.
type SubjectPartial struct {
	Count    int64          // kept events
	Sample   []FeatureEvent // the smallest events by compareEvents, at most MaxEvents once Normalize ran
	RegionAt int64
	Region   string
}

// Add adds one event (with its Key set).
func (p *SubjectPartial) Add(e FeatureEvent, region string, maxEvents int) {
	p.Count++
	p.Sample = append(p.Sample, e)
	if laterRegion(e.At, region, p.RegionAt, p.Region) {
		p.RegionAt, p.Region = e.At, region
	}
	if len(p.Sample) > 2*maxEvents {
		p.Normalize(maxEvents)
	}
}

// Merge adds q to p.
func (p *SubjectPartial) Merge(q *SubjectPartial, maxEvents int) {
	p.Count += q.Count
	p.Sample = append(p.Sample, q.Sample...)
	if laterRegion(q.RegionAt, q.Region, p.RegionAt, p.Region) {
		p.RegionAt, p.Region = q.RegionAt, q.Region
	}
	if len(p.Sample) > 2*maxEvents {
		p.Normalize(maxEvents)
	}
}

// Normalize sorts the sample and keeps its maxEvents smallest events.
func (p *SubjectPartial) Normalize(maxEvents int) {
	slices.SortFunc(p.Sample, compareEvents)
	p.Sample = p.Sample[:min(len(p.Sample), maxEvents)]
}

// Row returns the subject's raw features from the merged partial of all
// its events, and whether its events were sampled down.
func (p *SubjectPartial) Row(cfg FeatureConfig, end int64, windowDays float32) ([]float32, bool) {
	p.Normalize(cfg.MaxEvents)
	f := make([]float32, numFixed+cfg.CategoryBuckets)
	money, last := int64(0), int64(math.MinInt64)
	for _, e := range p.Sample {
		accumulate(f, &money, &last, e)
	}
	finishRow(f, money, last, end, windowDays)
	return f, p.Count > int64(cfg.MaxEvents)
}

// Partials turns the kept rows of one batch into a partial per subject
// (event keys set), and adds the batch's category names to names (bucket
// -> name -> events), which name the feature columns.
func (d *EventDecoder) Partials(b *dataset.Batch, keep []bool, names map[int32]map[string]int64) map[string]*SubjectPartial {
	dict := b.Column("subject_id").Str.Dict
	parts := make([]*SubjectPartial, len(dict))
	d.Decode(b, keep, func(x int32, e FeatureEvent, region, category string) {
		e.Key = d.Key(dict[x], e)
		if parts[x] == nil {
			parts[x] = &SubjectPartial{}
		}
		parts[x].Add(e, region, d.cfg.MaxEvents)
		if category != "" {
			if names[e.Cat] == nil {
				names[e.Cat] = map[string]int64{}
			}
			names[e.Cat][category]++
		}
	})
	out := make(map[string]*SubjectPartial)
	for x, p := range parts {
		if p != nil {
			out[dict[x]] = p
		}
	}
	return out
}

// FeatureNames names the feature columns from the category name counts of
// all events (bucket -> name -> events).
func FeatureNames(cfg FeatureConfig, names map[int32]map[string]int64) []Feature {
	buckets := make([]map[string]int64, cfg.CategoryBuckets)
	for b := range buckets {
		buckets[b] = names[int32(b)]
	}
	return featureNames(buckets)
}

// FeatureWindow returns the end of the logical day (µs since the epoch)
// and the length in days of the filter's window, which Row needs.
func FeatureWindow(flt *privacy.Filter, logicalDate time.Time) (end int64, windowDays float32) {
	return featureWindow(flt, logicalDate)
}
