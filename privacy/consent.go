package privacy

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// State is a subject's standing for one purpose at the logical date.
type State uint8

const (
	NoRecord  State = iota // never asked: no consent
	Granted                // the latest record grants
	Denied                 // the latest record denies
	Withdrawn              // the latest record withdraws
	OptedOut               // an opt-out of sale/sharing (GPC, CCPA) denies the purpose
	Malformed              // a malformed record: treated as not consenting
)

func (s State) String() string {
	return [...]string{"no_consent", "granted", "denied", "withdrawn", "opted_out", "malformed"}[s]
}

// subjectKey identifies a subject in memory: a 128-bit keyed hash of its
// token, with seeds drawn at random per index, so that no input can be
// crafted to collide (the chance of an accidental collision among a billion
// subjects is below 1e-20).
type subjectKey [2]uint64

type keyer struct{ s1, s2 maphash.Seed }

func newKeyer() keyer { return keyer{maphash.MakeSeed(), maphash.MakeSeed()} }

func (k keyer) key(token string) subjectKey {
	return subjectKey{maphash.String(k.s1, token), maphash.String(k.s2, token)}
}

// ConsentIndex answers, for every subject, its state per purpose at one
// logical date, and whether it asked for erasure by then. It is immutable
// once built and safe for concurrent use. It costs about 30 bytes per
// subject (a 16-byte key and a 2-byte state in a Go map).
type ConsentIndex struct {
	LogicalDate time.Time
	keys        keyer
	// state packs 3 bits per purpose (KnownPurposes order) and bit 15 for
	// erased.
	state map[subjectKey]uint16
	stats ConsentStats
}

const erasedBit = 1 << 15

// ConsentStats counts what building the index read.
type ConsentStats struct {
	Records           int64    `json:"records"`
	Future            int64    `json:"records_after_logical_date"`
	Malformed         int64    `json:"malformed"`
	MalformedExamples []string `json:"malformed_examples,omitempty"`
	TCStrings         int64    `json:"tc_strings"`
	OptOuts           int64    `json:"opt_outs"`
	Subjects          int      `json:"subjects"`
	ErasureRequests   int64    `json:"erasure_requests"`
	Erased            int      `json:"erased_subjects"`
}

func (ix *ConsentIndex) get(k subjectKey, purpose int) State {
	return State(ix.state[k] >> (3 * purpose) & 7)
}

// Stats returns the counts of the build.
func (ix *ConsentIndex) Stats() ConsentStats { return ix.stats }

// Len returns the number of subjects in the index.
func (ix *ConsentIndex) Len() int { return len(ix.state) }

// State returns the state of a subject for a purpose.
func (ix *ConsentIndex) State(token, purpose string) State {
	p := purposeIndex(purpose)
	if p < 0 {
		return NoRecord
	}
	return ix.get(ix.keys.key(token), p)
}

// Erased reports whether the subject asked for erasure on or before the
// logical date.
func (ix *ConsentIndex) Erased(token string) bool {
	return ix.state[ix.keys.key(token)]&erasedBit != 0
}

// pending is the per-subject state while building: the latest record per
// purpose, and sticky flags.
type pending struct {
	at     [4]int64 // µs of the latest record per purpose, 0: none
	state  [4]State
	sticky [4]State // OptedOut or Malformed, which no later record undoes
}

// BuildConsentIndex reads the consent and erasure tables (nil refs are
// skipped) and computes every subject's state at the logical date: the
// latest record at or before it per (subject, purpose) decides; a later
// record does not count; ties deny. A TC string record (source tcf) is a
// record for every purpose of the policy: granted where all the purpose's
// TCF purposes and our vendor have consent, denied elsewhere. An opt-out
// (a policy opt-out source with status denied or withdrawn) denies the
// policy's opt-out purposes for good. A malformed record (unknown status or
// purpose, a bad TC string) makes the subject not consenting for the
// purposes it touches, for good, and is counted.
func BuildConsentIndex(ctx context.Context, pol *Policy, consent, erasure *dataset.Ref, logicalDate time.Time) (*ConsentIndex, error) {
	ix := &ConsentIndex{LogicalDate: logicalDate, keys: newKeyer()}
	// The index covers the whole logical day.
	cutoff := logicalDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1).UnixMicro() - 1
	build := make(map[subjectKey]*pending)
	get := func(token string) *pending {
		k := ix.keys.key(token)
		p := build[k]
		if p == nil {
			p = &pending{at: [4]int64{math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64}}
			build[k] = p
		}
		return p
	}
	malformed := func(r *dataset.Consent, why string) {
		ix.stats.Malformed++
		if len(ix.stats.MalformedExamples) < 5 {
			ix.stats.MalformedExamples = append(ix.stats.MalformedExamples, fmt.Sprintf("%s at %s: %s", redactToken(r.SubjectID), r.RecordedAt.UTC().Format(time.RFC3339), why))
		}
	}
	optOutSource := map[string]bool{}
	for _, s := range pol.OptOut.Sources {
		optOutSource[s] = true
	}
	set := func(p *pending, purpose int, at int64, s State) {
		if at > p.at[purpose] || (at == p.at[purpose] && s != Granted) {
			p.at[purpose], p.state[purpose] = at, s
		}
	}
	if consent != nil {
		err := readTable(ctx, *consent, dataset.ConsentContract, func(rows []dataset.Consent) error {
			for i := range rows {
				r := &rows[i]
				ix.stats.Records++
				at := r.RecordedAt.UnixMicro()
				if at > cutoff {
					ix.stats.Future++
					continue
				}
				p := get(r.SubjectID)
				var st State
				switch r.Status {
				case "granted":
					st = Granted
				case "denied":
					st = Denied
				case "withdrawn":
					st = Withdrawn
				default:
					malformed(r, fmt.Sprintf("unknown status %q", r.Status))
					for k := range p.sticky {
						p.sticky[k] = max(p.sticky[k], Malformed)
					}
					continue
				}
				if optOutSource[r.Source] && st != Granted {
					ix.stats.OptOuts++
					for _, name := range pol.OptOut.Purposes {
						k := purposeIndex(name)
						if p.sticky[k] != Malformed {
							p.sticky[k] = OptedOut
						}
					}
					continue
				}
				if r.TCString != nil && *r.TCString != "" {
					ix.stats.TCStrings++
					tc, err := DecodeTCString(*r.TCString)
					if err != nil {
						malformed(r, err.Error())
						for k := range p.sticky {
							p.sticky[k] = Malformed
						}
						continue
					}
					vendor := tc.VendorConsent(pol.TCF.VendorID)
					for name, pp := range pol.Purposes {
						ok := vendor && st == Granted
						for _, t := range pp.TCFPurposes {
							ok = ok && tc.PurposeConsent(t)
						}
						s := Denied
						if ok {
							s = Granted
						}
						set(p, purposeIndex(name), at, s)
					}
					continue
				}
				if r.Purpose == nil {
					malformed(r, "no purpose and no TC string")
					for k := range p.sticky {
						p.sticky[k] = Malformed
					}
					continue
				}
				k := purposeIndex(*r.Purpose)
				if k < 0 {
					malformed(r, fmt.Sprintf("unknown purpose %q", *r.Purpose))
					for k := range p.sticky {
						p.sticky[k] = Malformed
					}
					continue
				}
				set(p, k, at, st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	ix.state = make(map[subjectKey]uint16, len(build))
	for k, p := range build {
		var v uint16
		for i := range 4 {
			s := p.state[i]
			if p.sticky[i] != NoRecord {
				s = p.sticky[i]
			}
			v |= uint16(s) << (3 * i)
		}
		ix.state[k] = v
	}
	ix.stats.Subjects = len(ix.state)
	build = nil
	if erasure != nil {
		err := readTable(ctx, *erasure, dataset.ErasureContract, func(rows []dataset.Erasure) error {
			for _, r := range rows {
				ix.stats.ErasureRequests++
				if r.RequestedAt.UnixMicro() > cutoff {
					continue
				}
				k := ix.keys.key(r.SubjectID)
				if ix.state[k]&erasedBit == 0 {
					ix.stats.Erased++
				}
				ix.state[k] |= erasedBit
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// readTable reads every row of the committed table at ref.
func readTable[T any](ctx context.Context, ref dataset.Ref, c *dataset.Contract, fn func([]T) error) error {
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		return fmt.Errorf("reading %s table: %w", c.Name, err)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, ref.Store, k, c)
		if err != nil {
			return err
		}
		err = dataset.ReadRows(ctx, f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// redactToken keeps enough of a token to find it again, not to guess it.
func redactToken(t string) string {
	if len(t) <= 12 {
		return "***"
	}
	return t[:10] + "…"
}
