package train

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/train/mf"
)

// Interactions turns events into interactions.
type Interactions struct {
	// EventWeights gives each event type's weight; types not listed are
	// not interactions. Default: view, add_to_cart and purchase 1 each
	// (heavier weights on purchases made DP training worse on the
	// generated shop: larger gradients, more clipping).
	EventWeights map[string]float64 `yaml:"event_weights"`
	// WindowDays is how far back from the logical date events count
	// (default 90; the policy's retention still applies).
	WindowDays int `yaml:"window_days"`
}

// DefaultInteractions returns the defaults above.
func DefaultInteractions() Interactions {
	return Interactions{EventWeights: map[string]float64{"view": 1, "add_to_cart": 1, "purchase": 1}, WindowDays: 90}
}

// Validate checks the settings.
func (c Interactions) Validate() error {
	if len(c.EventWeights) == 0 {
		return fmt.Errorf("%w: event_weights is empty: no event would be an interaction", mf.ErrConfig)
	}
	for t, w := range c.EventWeights {
		if !(w > 0 && w <= mf.MaxWeight) {
			return fmt.Errorf("%w: event_weights[%s] %v: want a number in (0, %g]", mf.ErrConfig, t, w, float64(mf.MaxWeight))
		}
	}
	if c.WindowDays < 1 {
		return fmt.Errorf("%w: window_days %d: want at least 1", mf.ErrConfig, c.WindowDays)
	}
	return nil
}

// LoadEvents reads the interactions of the events the filter keeps (consent
// for the job's purposes, no erasure, retention), within the window ending
// on the logical date. A subject-item pair's weight is the sum of its
// events' weights; its time is the latest event's.
func LoadEvents(ctx context.Context, pol *privacy.Policy, flt *privacy.Filter, events dataset.Ref, ic Interactions, day time.Time, workers int) (*mf.Data, privacy.Report, error) {
	dec, err := NewInteractionDecoder(ic, day)
	if err != nil {
		return nil, privacy.Report{}, err
	}
	sc, err := privacy.FilteredScan(ctx, pol, flt, events, dec.Columns())
	if err != nil {
		return nil, privacy.Report{}, err
	}
	defer sc.Close()
	b := mf.NewBuilder()
	var mu sync.Mutex
	keeps := make([][]bool, max(1, workers))
	type row struct {
		s, item int32 // indices into the batch's dictionaries
		w       float32
		at      int64 // Unix seconds
	}
	type scratch struct {
		rows         []row
		subjs, items []int32 // dictionary entry -> builder index, -1 for not yet
	}
	scratches := make([]scratch, max(1, workers))
	err = sc.Run(ctx, workers, func(w int, _ dataset.Unit, batch *dataset.Batch) error {
		var err error
		if keeps[w], err = flt.Apply(batch, keeps[w]); err != nil {
			return err
		}
		sc := &scratches[w]
		rows := sc.rows[:0]
		var bad error
		dec.DecodeIndexed(batch, keeps[w], func(s, item int32, wt float64, at int64) {
			if !(wt > 0 && wt <= mf.MaxWeight) && bad == nil {
				bad = fmt.Errorf("%w: weight %v: want a number in (0, %g]", mf.ErrInput, wt, float64(mf.MaxWeight))
			}
			rows = append(rows, row{s, item, float32(wt), time.UnixMicro(at).Unix()})
		})
		sc.rows = rows
		if bad != nil {
			return bad
		}
		subjDict, itemDict := batch.Column("subject_id").Str.Dict, batch.Column("item_id").Str.Dict
		sc.subjs = fill(sc.subjs, len(subjDict), -1)
		sc.items = fill(sc.items, len(itemDict), -1)
		mu.Lock()
		defer mu.Unlock()
		// The builder's indices of the batch's subjects and items, looked
		// up once per dictionary entry; rows are added in batch order.
		for _, r := range rows {
			s, it := sc.subjs[r.s], sc.items[r.item]
			if s < 0 {
				if subjDict[r.s] == "" {
					return fmt.Errorf("%w: empty subject or item id", mf.ErrInput)
				}
				s = b.Subject(subjDict[r.s])
				sc.subjs[r.s] = s
			}
			if it < 0 {
				if itemDict[r.item] == "" {
					return fmt.Errorf("%w: empty subject or item id", mf.ErrInput)
				}
				it = b.Item(itemDict[r.item])
				sc.items[r.item] = it
			}
			b.AddIndexed(s, it, r.w, r.at)
		}
		return nil
	})
	rep := flt.Report()
	if err != nil {
		return nil, rep, err
	}
	d, err := b.Data()
	if err != nil {
		// No count: in a DP run this error follows the spend and goes to
		// stderr, lineage and the audit log; the counts are in rep.
		return nil, rep, fmt.Errorf("%w: no consented interactions of the weighted event types in the %d days to %s (none kept by consent, erasure and retention)",
			mf.ErrInput, ic.WindowDays, day.Format(time.DateOnly))
	}
	return d, rep, nil
}

// fill returns s resized to n with every element v.
func fill(s []int32, n int, v int32) []int32 {
	s = slices.Grow(s[:0], n)[:n]
	for i := range s {
		s[i] = v
	}
	return s
}
