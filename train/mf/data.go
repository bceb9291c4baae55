package mf

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInput reports interactions that cannot be trained on.
var ErrInput = errors.New("invalid interactions")

// Interaction is one subject-item pair.
type Interaction struct {
	Item   int32
	Weight float32
	Time   int64 // Unix seconds; 0 when unknown
}

// Data holds each subject's interactions, items by index.
type Data struct {
	Subjects []string
	Items    []string
	Rows     [][]Interaction // Rows[s]: subject s's interactions, by time
}

// Builder collects interactions; repeated (subject, item) pairs add their
// weights, in the order they were added, and keep the latest time. It
// appends every interaction as it comes and merges the repeats once, in
// Data: no per-subject lookup table while it reads.
type Builder struct {
	subj, item map[string]int32
	d          Data
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{subj: map[string]int32{}, item: map[string]int32{}}
}

// MaxWeight bounds one interaction's weight, so that sums stay finite.
const MaxWeight = 1e6

// Add records one interaction.
func (b *Builder) Add(subject, item string, weight float64, at time.Time) error {
	if subject == "" || item == "" {
		return fmt.Errorf("%w: empty subject or item id", ErrInput)
	}
	if !(weight > 0 && weight <= MaxWeight) {
		return fmt.Errorf("%w: weight %v of an interaction with item %s: want a number in (0, %g]", ErrInput, weight, item, float64(MaxWeight))
	}
	var t int64
	if !at.IsZero() {
		t = at.Unix()
	}
	b.AddIndexed(b.Subject(subject), b.Item(item), float32(weight), t)
	return nil
}

// Subject returns the builder's index of a subject, adding it if it is
// new: with Item and AddIndexed, a reader that looks each id up once per
// dictionary entry adds rows without hashing strings.
func (b *Builder) Subject(subject string) int32 {
	s, ok := b.subj[subject]
	if !ok {
		s = int32(len(b.d.Subjects))
		b.subj[subject] = s
		b.d.Subjects = append(b.d.Subjects, subject)
		b.d.Rows = append(b.d.Rows, nil)
	}
	return s
}

// Item returns the builder's index of an item, adding it if it is new.
func (b *Builder) Item(item string) int32 {
	it, ok := b.item[item]
	if !ok {
		it = int32(len(b.d.Items))
		b.item[item] = it
		b.d.Items = append(b.d.Items, item)
	}
	return it
}

// AddIndexed records one interaction of subject s with item it (indices
// from Subject and Item) at t (Unix seconds); weight must be in
// (0, MaxWeight], as Add checks.
func (b *Builder) AddIndexed(s, it int32, weight float32, t int64) {
	b.d.Rows[s] = append(b.d.Rows[s], Interaction{Item: it, Weight: weight, Time: t})
}

// merge folds the repeats of each item of r into one interaction: the
// weights summed in the order they were added (capped at MaxWeight at
// every step), the latest time. It returns them by item, and keys, its
// scratch space, for the next call. Items are non-negative, so sorting
// item<<32 | position orders by item and keeps repeats in the order added.
func merge(r []Interaction, keys []uint64) ([]Interaction, []uint64) {
	keys = keys[:0]
	for i, x := range r {
		keys = append(keys, uint64(x.Item)<<32|uint64(i))
	}
	slices.Sort(keys)
	out := make([]Interaction, 0, len(r))
	for _, k := range keys {
		x := r[uint32(k)]
		if n := len(out); n > 0 && out[n-1].Item == x.Item {
			last := &out[n-1]
			last.Weight = min(last.Weight+x.Weight, MaxWeight)
			last.Time = max(last.Time, x.Time)
			continue
		}
		out = append(out, x)
	}
	return slices.Clip(out), keys
}

// Data returns the interactions in a canonical order that does not depend
// on the order they were added in: subjects and items sorted by id, each
// subject's interactions by time, then item.
func (b *Builder) Data() (*Data, error) {
	if len(b.d.Subjects) == 0 {
		return nil, fmt.Errorf("%w: no interactions", ErrInput)
	}
	items := slices.Clone(b.d.Items)
	slices.Sort(items)
	remap := make([]int32, len(items))
	for j, it := range items {
		remap[b.item[it]] = int32(j)
	}
	order := make([]int32, len(b.d.Subjects))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(b.d.Subjects[x], b.d.Subjects[y]) })
	d := &Data{Subjects: make([]string, len(order)), Items: items, Rows: make([][]Interaction, len(order))}
	// Subjects are independent: workers take every w-th one.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(order)/1024))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var keys []uint64
			for k := w; k < len(order); k += workers {
				s := order[k]
				d.Subjects[k] = b.d.Subjects[s]
				r := b.d.Rows[s]
				for i := range r {
					r[i].Item = remap[r[i].Item]
				}
				r, keys = merge(r, keys)
				slices.SortFunc(r, func(a, c Interaction) int {
					if a.Time != c.Time {
						return int(sign(a.Time - c.Time))
					}
					return int(a.Item - c.Item)
				})
				d.Rows[k] = r
			}
		})
	}
	wg.Wait()
	*b = *NewBuilder() // the rows now belong to d
	return d, nil
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// ReadCSV reads interactions from a CSV with a header naming subject_id
// and item_id, and optionally event_time (RFC 3339 or YYYY-MM-DD), weight
// and event_type; with types, only rows whose event_type is one of them.
func ReadCSV(r io.Reader, name string, types []string) (*Data, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: no header: %v", ErrInput, name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	si, ok1 := col["subject_id"]
	ii, ok2 := col["item_id"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: %s: the header needs subject_id and item_id (has %v)", ErrInput, name, header)
	}
	ti, hasTime := col["event_time"]
	wi, hasWeight := col["weight"]
	ei, hasType := col["event_type"]
	if len(types) > 0 && !hasType {
		return nil, fmt.Errorf("%w: %s: event types %v asked for, but the header has no event_type (has %v)", ErrInput, name, types, header)
	}
	b := NewBuilder()
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInput, name, err)
		}
		if len(types) > 0 && !slices.Contains(types, strings.TrimSpace(rec[ei])) {
			continue
		}
		w := 1.0
		if hasWeight {
			if w, err = strconv.ParseFloat(strings.TrimSpace(rec[wi]), 64); err != nil {
				return nil, fmt.Errorf("%w: %s line %d: weight %q is not a number", ErrInput, name, line, rec[wi])
			}
		}
		var at time.Time
		if hasTime && rec[ti] != "" {
			v := strings.TrimSpace(rec[ti])
			if at, err = time.Parse(time.RFC3339, v); err != nil {
				if at, err = time.Parse(time.DateOnly, v); err != nil {
					return nil, fmt.Errorf("%w: %s line %d: event_time %q is not RFC 3339 or YYYY-MM-DD", ErrInput, name, line, v)
				}
			}
		}
		if err := b.Add(strings.TrimSpace(rec[si]), strings.TrimSpace(rec[ii]), w, at); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
	}
	return b.Data()
}

// Split holds out each subject's last k interactions by time (k >= 1), or
// when k is 0 the last fraction frac of them by time (a random fraction
// when random is set); subjects with too few interactions to keep one for
// training are training-only. A random holdout shuffles each subject's rows
// with its own stream, keyed by the seed and its token (as bounding is):
// adding or removing a subject leaves every other subject's split as it was.
func (d *Data) Split(k int, frac float64, random bool, seed uint64) (trainD *Data, test [][]int32) {
	pcg := rand.NewPCG(0, 0)
	r := rand.New(pcg)
	t := &Data{Subjects: d.Subjects, Items: d.Items, Rows: make([][]Interaction, len(d.Rows))}
	test = make([][]int32, len(d.Rows))
	for s, rows := range d.Rows {
		n := 0
		switch {
		case k > 0:
			n = k
		case frac > 0:
			n = int(math.Round(frac * float64(len(rows))))
		}
		if n <= 0 || len(rows) <= n {
			t.Rows[s] = rows
			continue
		}
		if k == 0 && random {
			rows = slices.Clone(rows)
			pcg.Seed(seed^subjectKey(d.Subjects[s]), 0x5eed)
			r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		}
		// Rows are by time, so the training rows are d's own, up to the
		// holdout (no copy: with the data they are most of a job's
		// memory); the capacity ends there, so that an append to them
		// could never write over d's.
		t.Rows[s] = rows[: len(rows)-n : len(rows)-n]
		for _, x := range rows[len(rows)-n:] {
			test[s] = append(test[s], x.Item)
		}
	}
	return t, test
}

// Interactions counts all rows.
func (d *Data) Interactions() int {
	n := 0
	for _, r := range d.Rows {
		n += len(r)
	}
	return n
}

// OnItems returns d's interactions with the given items, indexed into
// items; interactions with other items are left out. The result shares
// d.Subjects.
func (d *Data) OnItems(items []string) *Data {
	rows, _ := remapRows(d.Rows, itemIndex(d.Items, items))
	return &Data{Subjects: d.Subjects, Items: items, Rows: rows}
}
