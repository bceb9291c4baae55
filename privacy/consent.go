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
	if i := t.find(k); i >= 0 {
		return t.vals[i], true
	}
	return 0, false
}

// find returns the slot of k, or -1 if k is not in the table. Slots are
// fixed once the table is built, so that callers may keep data of their
// own per subject in a slice as long as the table (Filter does).
func (t *subjectTable) find(k subjectKey) int {
	if t.keys == nil {
		return -1
	}
	k = nonZero(k)
	for i := k[0] & t.mask; ; i = (i + 1) & t.mask {
		// Word by word: comparing the arrays calls memequal128.
		switch got := t.keys[i]; {
		case got[0] == k[0] && got[1] == k[1]:
			return int(i)
		case got[0]|got[1] == 0:
			return -1
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
	b := newConsentBuilder(pol, logicalDate)
	snapshot := sha256.New()
	fmt.Fprintf(snapshot, "%s\n", logicalDate.UTC().Format(time.DateOnly))
	if consent != nil {
		if err := scanTable(ctx, *consent, lenientConsent, snapshot, b.addConsent); err != nil {
			return nil, err
		}
	}
	if erasure != nil {
		if err := scanTable(ctx, *erasure, dataset.ErasureContract, snapshot, b.addErasures); err != nil {
			return nil, err
		}
	}
	b.ix.stats.Snapshot = hex.EncodeToString(snapshot.Sum(nil))
	return b.finish(), nil
}

// consentBuilder is the state of one BuildConsentIndex: the index being
// built, each subject's pending records, and the policy's reading of
// records, prepared once.
type consentBuilder struct {
	ix      *ConsentIndex
	pol     *Policy
	cutoff  int64 // µs of the last instant of the logical date
	pending map[subjectKey]*pending
	jurCode map[string]uint32 // jurisdiction name -> code (see ConsentIndex.jurisdictions)

	optOutSource map[string]bool
	optOut       []int // purpose indexes an opt-out denies
	tcfPurposes  []tcfPurpose
}

// tcfPurpose maps one policy purpose (by index) to the TCF purposes that
// must all have consent.
type tcfPurpose struct {
	index int
	tcf   []int
}

// allMalformed is the sticky state of a subject with a malformed record.
var allMalformed = [4]State{Malformed, Malformed, Malformed, Malformed}

func newConsentBuilder(pol *Policy, logicalDate time.Time) *consentBuilder {
	b := &consentBuilder{
		ix:           &ConsentIndex{LogicalDate: logicalDate, keys: newKeyer()},
		pol:          pol,
		cutoff:       logicalDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1).UnixMicro() - 1,
		pending:      make(map[subjectKey]*pending),
		jurCode:      map[string]uint32{},
		optOutSource: map[string]bool{},
		optOut:       make([]int, 0, len(pol.OptOut.Purposes)),
	}
	for _, s := range pol.OptOut.Sources {
		b.optOutSource[s] = true
	}
	for _, name := range pol.OptOut.Purposes {
		b.optOut = append(b.optOut, purposeIndex(name))
	}
	for name, pp := range pol.Purposes {
		b.tcfPurposes = append(b.tcfPurposes, tcfPurpose{purposeIndex(name), pp.TCFPurposes})
	}
	return b
}

// subject returns the pending state of token, new if it has none yet.
func (b *consentBuilder) subject(token string) *pending {
	k := b.ix.keys.key(token)
	p := b.pending[k]
	if p == nil {
		p = &pending{at: [4]int64{math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64}, jurAt: math.MinInt64}
		b.pending[k] = p
	}
	return p
}

// set records state s of purpose at time at unless a later record (or, at
// the same time, a denying one) decides already: ties deny.
func (p *pending) set(purpose int, at int64, s State) {
	if at > p.at[purpose] || (at == p.at[purpose] && s != Granted) {
		p.at[purpose], p.state[purpose] = at, s
	}
}

// consentRows is one batch of consent records with its dictionaries
// decoded once: states, purpose indexes and jurisdiction codes per
// distinct value.
type consentRows struct {
	subject, purpose, status, source, tcString, jurisdiction *dataset.Strings

	recordedAt *dataset.ColumnData
	at         []int64 // recorded_at, µs

	states   []State  // per status.Dict entry
	purposes []int    // per purpose.Dict entry (-1: unknown)
	codes    []uint32 // per jurisdiction.Dict entry (0: none)
}

// addConsent folds one batch of consent records into the pending states.
func (b *consentBuilder) addConsent(batch *dataset.Batch) error {
	r := &consentRows{
		subject:      &batch.Column("subject_id").Str,
		purpose:      &batch.Column("purpose").Str,
		status:       &batch.Column("status").Str,
		source:       &batch.Column("source").Str,
		tcString:     &batch.Column("tc_string").Str,
		jurisdiction: &batch.Column("jurisdiction").Str,
		recordedAt:   batch.Column("recorded_at"),
	}
	r.at = r.recordedAt.Int
	var err error
	if r.codes, err = b.jurisdictionCodes(r.jurisdiction.Dict); err != nil {
		return err
	}
	r.states = decodeStatuses(r.status.Dict)
	r.purposes = make([]int, len(r.purpose.Dict))
	for i, s := range r.purpose.Dict {
		r.purposes[i] = purposeIndex(s)
	}
	for i := range batch.Rows {
		b.addRecord(r, i)
	}
	return nil
}

// jurisdictionCodes codes each distinct jurisdiction once; of two records
// at the same time, the later name in sort order wins (see addRecord), so
// the choice does not depend on row order.
func (b *consentBuilder) jurisdictionCodes(dict []string) ([]uint32, error) {
	ix := b.ix
	codes := make([]uint32, len(dict))
	for i, j := range dict {
		if j == "" {
			continue
		}
		c, ok := b.jurCode[j]
		if !ok {
			if len(ix.jurisdictions) == maxJurisdictions {
				return nil, fmt.Errorf("%w: consent records name more than %d jurisdictions", ErrPolicy, maxJurisdictions)
			}
			ix.jurisdictions = append(ix.jurisdictions, j)
			c = uint32(len(ix.jurisdictions))
			b.jurCode[j] = c
		}
		codes[i] = c
	}
	return codes, nil
}

// decodeStatuses decodes each distinct status once; an unknown one is
// Malformed.
func decodeStatuses(dict []string) []State {
	states := make([]State, len(dict))
	for i, s := range dict {
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
	return states
}

// addRecord folds record i of r into its subject's pending state.
func (b *consentBuilder) addRecord(r *consentRows, i int) {
	b.ix.stats.Records++
	token, ok := r.subject.At(i)
	if !ok {
		b.malformed(r, i, "no subject_id")
		return
	}
	p := b.subject(token)
	if r.recordedAt.Null(i) || r.status.Index[i] < 0 {
		b.malformed(r, i, "no recorded_at or no status")
		p.sticky = allMalformed
		return
	}
	if r.at[i] > b.cutoff {
		b.ix.stats.Future++
		return
	}
	b.noteJurisdiction(p, r, i)
	if why := b.applyRecord(p, r, i); why != "" {
		b.malformed(r, i, why)
		p.sticky = allMalformed
	}
}

// noteJurisdiction keeps the jurisdiction of the subject's latest record
// that names one.
func (b *consentBuilder) noteJurisdiction(p *pending, r *consentRows, i int) {
	x := r.jurisdiction.Index[i]
	if x < 0 || r.codes[x] == 0 {
		return
	}
	at := r.at[i]
	if at > p.jurAt || at == p.jurAt && b.ix.jurisdictions[r.codes[x]-1] > b.ix.jurisdictionOf(p.jur<<jurisdictionBits) {
		p.jurAt, p.jur = at, r.codes[x]
	}
}

// applyRecord applies a dated, in-window record i (an opt-out, a TC
// string, or a status for one purpose) to p. It returns why the record
// is malformed, or "".
func (b *consentBuilder) applyRecord(p *pending, r *consentRows, i int) (malformed string) {
	st := r.states[r.status.Index[i]]
	if st == Malformed {
		return fmt.Sprintf("unknown status %q", r.status.Dict[r.status.Index[i]])
	}
	if src, _ := r.source.At(i); b.optOutSource[src] && st != Granted {
		b.ix.stats.OptOuts++
		for _, k := range b.optOut {
			if p.sticky[k] != Malformed {
				p.sticky[k] = OptedOut
			}
		}
		return ""
	}
	if tc, ok := r.tcString.At(i); ok && tc != "" {
		b.ix.stats.TCStrings++
		return b.applyTCString(p, tc, r.at[i], st)
	}
	x := r.purpose.Index[i]
	if x < 0 {
		return "no purpose and no TC string"
	}
	if r.purposes[x] < 0 {
		return fmt.Sprintf("unknown purpose %q", r.purpose.Dict[x])
	}
	p.set(r.purposes[x], r.at[i], st)
	return ""
}

// applyTCString records a TC string with status st, made at time at, for
// every purpose of the policy. It returns why the string is malformed, or
// "".
func (b *consentBuilder) applyTCString(p *pending, tc string, at int64, st State) (malformed string) {
	dec, err := DecodeTCString(tc)
	if err != nil {
		return err.Error()
	}
	vendor := dec.VendorConsent(b.pol.TCF.VendorID)
	for _, tp := range b.tcfPurposes {
		ok := vendor && st == Granted
		for _, t := range tp.tcf {
			ok = ok && dec.PurposeConsent(t)
		}
		s := Denied
		if ok {
			s = Granted
		}
		p.set(tp.index, at, s)
	}
	return ""
}

// malformed counts record i of r as malformed and keeps the first few as
// examples, with the token redacted.
func (b *consentBuilder) malformed(r *consentRows, i int, why string) {
	stats := &b.ix.stats
	stats.Malformed++
	if len(stats.MalformedExamples) < 5 {
		token, _ := r.subject.At(i)
		stats.MalformedExamples = append(stats.MalformedExamples,
			fmt.Sprintf("%s at %s: %s", redactToken(token), time.UnixMicro(r.at[i]).UTC().Format(time.RFC3339), why))
	}
}

// addErasures marks the subjects of one batch of erasure requests made by
// the end of the logical date.
func (b *consentBuilder) addErasures(batch *dataset.Batch) error {
	subj, at := &batch.Column("subject_id").Str, batch.Column("requested_at").Int
	for i := range batch.Rows {
		b.ix.stats.ErasureRequests++
		if at[i] > b.cutoff {
			continue
		}
		token, _ := subj.At(i)
		if p := b.subject(token); !p.erased {
			p.erased = true
			b.ix.stats.Erased++
		}
	}
	return nil
}

// finish packs every subject's pending state into the index's table: a
// sticky state overrides the latest record.
func (b *consentBuilder) finish() *ConsentIndex {
	ix := b.ix
	ix.table = newSubjectTable(len(b.pending))
	if len(ix.jurisdictions) > 0 {
		ix.stats.Jurisdictions = map[string]int{}
	}
	for k, p := range b.pending {
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
	return ix
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
