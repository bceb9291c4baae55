package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/maphash"
	"math"
	"slices"
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
// logical date, whether it asked for erasure by then, and the jurisdiction
// (legal regime) its latest consent record names. It is immutable once
// built and safe for concurrent use. It is an open-addressing table of
// 16-byte keys and 4-byte states at a load factor between 3/8 and 3/4: 27
// to 53 bytes per subject.
type ConsentIndex struct {
	LogicalDate time.Time
	keys        keyer
	table       subjectTable
	stats       ConsentStats
	// jurisdictions names the codes stored in a value's high 16 bits
	// (code c is jurisdictions[c-1]; 0 is none).
	jurisdictions []string
}

// erasedBit marks a subject that asked for erasure; the low 12 bits hold 3
// bits of State per purpose, in KnownPurposes order, and the high 16 bits
// the subject's jurisdiction code.
const (
	erasedBit        = 1 << 15
	jurisdictionBits = 16
	maxJurisdictions = 1<<16 - 1
)

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
	// Jurisdictions counts subjects by the jurisdiction of their latest
	// consent record that names one ("" for none).
	Jurisdictions map[string]int `json:"subjects_by_jurisdiction,omitempty"`
	// Snapshot fingerprints the consent and erasure files read (their
	// keys, sizes and Parquet footers): two runs with the same snapshot
	// decided consent from the same records.
	Snapshot string `json:"snapshot_sha256,omitempty"`
}

// Stats returns the counts of the build.
func (ix *ConsentIndex) Stats() ConsentStats { return ix.stats }

// Len returns the number of subjects in the index.
func (ix *ConsentIndex) Len() int { return ix.table.n }

// Bytes returns the memory the index holds.
func (ix *ConsentIndex) Bytes() int { return len(ix.table.keys)*16 + len(ix.table.vals)*4 }

func (ix *ConsentIndex) lookup(k subjectKey) (uint32, bool) { return ix.table.get(k) }

// Jurisdiction returns the legal regime (GDPR, CCPA, ...) named by the
// subject's latest consent record at or before the logical date that names
// one, or "" if none does.
func (ix *ConsentIndex) Jurisdiction(token string) string {
	v, _ := ix.lookup(ix.keys.key(token))
	return ix.jurisdictionOf(v)
}

func (ix *ConsentIndex) jurisdictionOf(v uint32) string {
	if c := v >> jurisdictionBits; c > 0 {
		return ix.jurisdictions[c-1]
	}
	return ""
}

// State returns the state of a subject for a purpose.
func (ix *ConsentIndex) State(token, purpose string) State {
	p := purposeIndex(purpose)
	if p < 0 {
		return NoRecord
	}
	v, _ := ix.lookup(ix.keys.key(token))
	return State(v >> (3 * p) & 7)
}

// Erased reports whether the subject asked for erasure on or before the
// logical date.
func (ix *ConsentIndex) Erased(token string) bool {
	v, _ := ix.lookup(ix.keys.key(token))
	return v&erasedBit != 0
}

// subjectTable is an open-addressing hash table with linear probing. Keys
// are random 128-bit hashes, so their first word serves as the hash; the
// zero key marks an empty slot (a real key is never zero: see set).
type subjectTable struct {
	keys []subjectKey
	vals []uint32
	mask uint64
	n    int
}

func newSubjectTable(n int) subjectTable {
	size := 16
	for size*3 < n*4 { // load factor at most 3/4
		size <<= 1
	}
	return subjectTable{keys: make([]subjectKey, size), vals: make([]uint32, size), mask: uint64(size - 1)}
}

func nonZero(k subjectKey) subjectKey {
	if k == (subjectKey{}) {
		k[1] = 1
	}
	return k
}

func (t *subjectTable) get(k subjectKey) (uint32, bool) {
	if t.keys == nil {
		return 0, false
	}
	k = nonZero(k)
	for i := k[0] & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			return t.vals[i], true
		case subjectKey{}:
			return 0, false
		}
	}
}

// set stores v for k; the table must have room (it is sized up front).
func (t *subjectTable) set(k subjectKey, v uint32) {
	k = nonZero(k)
	for i := k[0] & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			t.vals[i] = v
			return
		case subjectKey{}:
			t.keys[i], t.vals[i] = k, v
			t.n++
			return
		}
	}
}

// pending is the per-subject state while building: the latest record per
// purpose, and sticky flags.
type pending struct {
	at     [4]int64 // µs of the latest record per purpose
	state  [4]State
	sticky [4]State // OptedOut or Malformed, which no later record undoes
	erased bool
	jurAt  int64 // µs of the latest record that names a jurisdiction
	jur    uint32
}

// BuildConsentIndex reads the consent and erasure tables (nil refs are
// skipped) and computes every subject's state at the logical date: the
// latest record at or before the end of that day per (subject, purpose)
// decides; later records do not count; ties deny. A TC string record (a
// tc_string value) is a record for every purpose of the policy: granted
// where all the purpose's TCF purposes and our vendor have consent, denied
// elsewhere. An opt-out (a policy opt-out source with status denied or
// withdrawn) denies the policy's opt-out purposes for good. A malformed
// record (unknown status or purpose, a bad TC string) makes the subject not
// consenting for the purposes it touches, for good, and is counted.
func BuildConsentIndex(ctx context.Context, pol *Policy, consent, erasure *dataset.Ref, logicalDate time.Time) (*ConsentIndex, error) {
	ix := &ConsentIndex{LogicalDate: logicalDate, keys: newKeyer()}
	snapshot := sha256.New()
	fmt.Fprintf(snapshot, "%s\n", logicalDate.UTC().Format(time.DateOnly))
	cutoff := logicalDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1).UnixMicro() - 1
	build := make(map[subjectKey]*pending)
	get := func(token string) *pending {
		k := ix.keys.key(token)
		p := build[k]
		if p == nil {
			p = &pending{at: [4]int64{math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64}, jurAt: math.MinInt64}
			build[k] = p
		}
		return p
	}
	optOutSource := map[string]bool{}
	for _, s := range pol.OptOut.Sources {
		optOutSource[s] = true
	}
	optOut := make([]int, 0, len(pol.OptOut.Purposes))
	for _, name := range pol.OptOut.Purposes {
		optOut = append(optOut, purposeIndex(name))
	}
	type tcfPurpose struct {
		index int
		tcf   []int
	}
	var tcfPurposes []tcfPurpose
	for name, pp := range pol.Purposes {
		tcfPurposes = append(tcfPurposes, tcfPurpose{purposeIndex(name), pp.TCFPurposes})
	}
	set := func(p *pending, purpose int, at int64, s State) {
		if at > p.at[purpose] || (at == p.at[purpose] && s != Granted) {
			p.at[purpose], p.state[purpose] = at, s
		}
	}
	jurCode := map[string]uint32{}
	if consent != nil {
		err := scanTable(ctx, *consent, lenientConsent, snapshot, func(b *dataset.Batch) error {
			subj, purpose, status := &b.Column("subject_id").Str, &b.Column("purpose").Str, &b.Column("status").Str
			source, tcs := &b.Column("source").Str, &b.Column("tc_string").Str
			jurs := &b.Column("jurisdiction").Str
			// Code each distinct jurisdiction once; of two records at the
			// same time, the later name in sort order wins, so the choice
			// does not depend on row order.
			codes := make([]uint32, len(jurs.Dict))
			for i, j := range jurs.Dict {
				if j == "" {
					continue
				}
				c, ok := jurCode[j]
				if !ok {
					if len(ix.jurisdictions) == maxJurisdictions {
						return fmt.Errorf("%w: consent records name more than %d jurisdictions", ErrPolicy, maxJurisdictions)
					}
					ix.jurisdictions = append(ix.jurisdictions, j)
					c = uint32(len(ix.jurisdictions))
					jurCode[j] = c
				}
				codes[i] = c
			}
			at := b.Column("recorded_at").Int
			// Decode each distinct status once.
			states := make([]State, len(status.Dict))
			for i, s := range status.Dict {
				switch s {
				case "granted":
					states[i] = Granted
				case "denied":
					states[i] = Denied
				case "withdrawn":
					states[i] = Withdrawn
				default:
					states[i] = Malformed
				}
			}
			purposes := make([]int, len(purpose.Dict))
			for i, s := range purpose.Dict {
				purposes[i] = purposeIndex(s)
			}
			malformed := func(i int, why string) {
				ix.stats.Malformed++
				if len(ix.stats.MalformedExamples) < 5 {
					token, _ := subj.At(i)
					ix.stats.MalformedExamples = append(ix.stats.MalformedExamples,
						fmt.Sprintf("%s at %s: %s", redactToken(token), time.UnixMicro(at[i]).UTC().Format(time.RFC3339), why))
				}
			}
			for i := range b.Rows {
				ix.stats.Records++
				token, ok := subj.At(i)
				if !ok {
					malformed(i, "no subject_id")
					continue
				}
				p := get(token)
				if b.Column("recorded_at").Null(i) || status.Index[i] < 0 {
					malformed(i, "no recorded_at or no status")
					p.sticky = [4]State{Malformed, Malformed, Malformed, Malformed}
					continue
				}
				if at[i] > cutoff {
					ix.stats.Future++
					continue
				}
				if x := jurs.Index[i]; x >= 0 && codes[x] != 0 && (at[i] > p.jurAt || at[i] == p.jurAt && ix.jurisdictions[codes[x]-1] > ix.jurisdictionOf(p.jur<<jurisdictionBits)) {
					p.jurAt, p.jur = at[i], codes[x]
				}
				st := states[status.Index[i]]
				if st == Malformed {
					malformed(i, fmt.Sprintf("unknown status %q", status.Dict[status.Index[i]]))
					p.sticky = [4]State{Malformed, Malformed, Malformed, Malformed}
					continue
				}
				if src, _ := source.At(i); optOutSource[src] && st != Granted {
					ix.stats.OptOuts++
					for _, k := range optOut {
						if p.sticky[k] != Malformed {
							p.sticky[k] = OptedOut
						}
					}
					continue
				}
				if tc, ok := tcs.At(i); ok && tc != "" {
					ix.stats.TCStrings++
					dec, err := DecodeTCString(tc)
					if err != nil {
						malformed(i, err.Error())
						p.sticky = [4]State{Malformed, Malformed, Malformed, Malformed}
						continue
					}
					vendor := dec.VendorConsent(pol.TCF.VendorID)
					for _, tp := range tcfPurposes {
						ok := vendor && st == Granted
						for _, t := range tp.tcf {
							ok = ok && dec.PurposeConsent(t)
						}
						s := Denied
						if ok {
							s = Granted
						}
						set(p, tp.index, at[i], s)
					}
					continue
				}
				x := purpose.Index[i]
				if x < 0 {
					malformed(i, "no purpose and no TC string")
					p.sticky = [4]State{Malformed, Malformed, Malformed, Malformed}
					continue
				}
				if purposes[x] < 0 {
					malformed(i, fmt.Sprintf("unknown purpose %q", purpose.Dict[x]))
					p.sticky = [4]State{Malformed, Malformed, Malformed, Malformed}
					continue
				}
				set(p, purposes[x], at[i], st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if erasure != nil {
		err := scanTable(ctx, *erasure, dataset.ErasureContract, snapshot, func(b *dataset.Batch) error {
			subj, at := &b.Column("subject_id").Str, b.Column("requested_at").Int
			for i := range b.Rows {
				ix.stats.ErasureRequests++
				if at[i] > cutoff {
					continue
				}
				token, _ := subj.At(i)
				if p := get(token); !p.erased {
					p.erased = true
					ix.stats.Erased++
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	ix.stats.Snapshot = hex.EncodeToString(snapshot.Sum(nil))
	ix.table = newSubjectTable(len(build))
	if len(ix.jurisdictions) > 0 {
		ix.stats.Jurisdictions = map[string]int{}
	}
	for k, p := range build {
		var v uint32
		for i := range 4 {
			s := p.state[i]
			if p.sticky[i] != NoRecord {
				s = p.sticky[i]
			}
			v |= uint32(s) << (3 * i)
		}
		if p.erased {
			v |= erasedBit
		}
		v |= p.jur << jurisdictionBits
		if ix.stats.Jurisdictions != nil {
			ix.stats.Jurisdictions[ix.jurisdictionOf(v)]++
		}
		ix.table.set(k, v)
	}
	ix.stats.Subjects = ix.table.n
	return ix, nil
}

// lenientConsent is the consent contract with nulls allowed where the
// contract requires values, so that a bad row is counted as malformed (and
// its subject treated as not consenting) instead of failing the whole
// ledger.
var lenientConsent = func() *dataset.Contract {
	c := *dataset.ConsentContract
	c.Columns = slices.Clone(c.Columns)
	for i := range c.Columns {
		c.Columns[i].Nullable = true
	}
	return &c
}()

// scanTable decodes every row group of the committed table at ref, in
// order, on one goroutine.
func scanTable(ctx context.Context, ref dataset.Ref, c *dataset.Contract, snapshot hash.Hash, fn func(*dataset.Batch) error) error {
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		return fmt.Errorf("reading %s table: %w", c.Name, err)
	}
	sort.Strings(keys)
	fp, err := dataset.Fingerprint(ctx, ref.Store, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(snapshot, "%s\x00%s\x00%s\n", c.Name, ref, fp)
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, c)
	if err != nil {
		return err
	}
	defer sc.Close()
	return sc.Run(ctx, 1, func(_ int, _ dataset.Unit, b *dataset.Batch) error { return fn(b) })
}

// redactToken keeps enough of a token to find it again, not to guess it.
func redactToken(t string) string {
	if len(t) <= 12 {
		return "***"
	}
	return t[:10] + "…"
}
