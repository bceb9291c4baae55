package privacy

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// Reason is why a row or a subject was dropped.
type Reason uint8

const (
	Keep Reason = iota
	ReasonErased
	ReasonOptedOut
	ReasonWithdrawn
	ReasonDenied
	ReasonMalformed
	ReasonNoConsent
	ReasonExpired
	ReasonFuture
	ReasonOtherJurisdiction
	numReasons
)

var reasonNames = [...]string{"kept", "erased", "opted_out", "withdrawn", "denied", "malformed_consent", "no_consent", "expired", "after_logical_date", "other_jurisdiction"}

func (r Reason) String() string { return reasonNames[r] }

// stateReason orders consent states by which reason a drop reports.
func stateReason(s State) Reason {
	switch s {
	case OptedOut:
		return ReasonOptedOut
	case Withdrawn:
		return ReasonWithdrawn
	case Denied:
		return ReasonDenied
	case Malformed:
		return ReasonMalformed
	case NoRecord:
		return ReasonNoConsent
	}
	return Keep
}

// Filter decides, row by row, what a job with given purposes may process
// at a logical date: subjects who granted every purpose and did not ask for
// erasure, events inside the strictest retention window of the purposes.
// Apply may be called from many goroutines; the counts it keeps make the
// Report.
type Filter struct {
	ix        *ConsentIndex
	purposes  []int
	names     []string
	retention int
	cutoff    int64 // µs: events before this are expired
	end       int64 // µs: events at or after this are after the logical date
	// zone, when set, holds the jurisdictions the job may process (by
	// code); subjects of any other, or of none, are dropped.
	zone      map[uint32]bool
	zoneNames []string

	rows [numReasons]atomic.Int64
	mu   sync.Mutex
	// What the rows of each subject seen say (a SubjectMark; 0 for a
	// subject not seen): in marks by the subject's slot in the consent
	// index, in others for subjects the index does not hold.
	marks  []SubjectMark
	others map[subjectKey]SubjectMark

	scratch sync.Pool // of *classified
}

// NewFilter returns the filter for a job's purposes. It checks the
// purposes against the policy.
func NewFilter(pol *Policy, ix *ConsentIndex, purposes []string) (*Filter, error) {
	if err := pol.CheckPurposes(purposes); err != nil {
		return nil, err
	}
	days := pol.RetentionDays(purposes)
	day := ix.LogicalDate.UTC().Truncate(24 * time.Hour)
	f := &Filter{
		ix: ix, names: purposes, retention: days,
		cutoff: day.AddDate(0, 0, 1-days).UnixMicro(), // the logical day and days-1 before it
		end:    day.AddDate(0, 0, 1).UnixMicro(),
		marks:  make([]SubjectMark, len(ix.table.keys)),
		others: make(map[subjectKey]SubjectMark),
	}
	f.scratch.New = func() any { return new(classified) }
	for _, p := range purposes {
		f.purposes = append(f.purposes, purposeIndex(p))
	}
	return f, nil
}

// RestrictJurisdictions limits the filter to subjects whose jurisdiction
// (ConsentIndex.Jurisdiction) is one of names: the others, and subjects
// whose consent records name none, are dropped as other_jurisdiction. It
// must be called before Apply. A name no record uses selects no one; that
// is not an error, since a zone may be empty on a given day.
func (f *Filter) RestrictJurisdictions(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: no jurisdictions to restrict to", ErrPolicy)
	}
	f.zone = map[uint32]bool{}
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("%w: empty jurisdiction name", ErrPolicy)
		}
		if i := slices.Index(f.ix.jurisdictions, n); i >= 0 {
			f.zone[uint32(i+1)] = true
		}
	}
	f.zoneNames = slices.Clone(names)
	return nil
}

// RetentionStart returns the first instant the filter keeps.
func (f *Filter) RetentionStart() time.Time { return time.UnixMicro(f.cutoff).UTC() }

// End returns the first instant after the filter's window: the end of the
// logical day. A subject's row is kept if the subject is and the row's time
// is in [RetentionStart, End).
func (f *Filter) End() time.Time { return time.UnixMicro(f.end).UTC() }

// decide returns the consent reason for a subject (Keep if it may be
// processed) and its slot in the consent index (-1 if the index does not
// hold it).
func (f *Filter) decide(k subjectKey) (Reason, int) {
	slot := f.ix.table.find(k)
	if slot < 0 {
		return ReasonNoConsent, slot
	}
	return f.reason(f.ix.table.vals[slot]), slot
}

// reason returns the consent reason for a subject's value in the index.
func (f *Filter) reason(v uint32) Reason {
	if f.zone != nil && !f.zone[v>>jurisdictionBits] {
		return ReasonOtherJurisdiction
	}
	if v&erasedBit != 0 {
		return ReasonErased
	}
	worst := Keep
	for _, p := range f.purposes {
		r := stateReason(State(v >> (3 * p) & 7))
		if r != Keep && (worst == Keep || r < worst) {
			worst = r
		}
	}
	return worst
}

// RowCounts counts rows by reason.
type RowCounts [numReasons]int64

// SubjectMark is what the rows of a subject seen so far say: whether a row
// was kept, whether one fell outside the window, and the subject's consent
// reason. Marks of the same subject merge with Merge, in any order.
type SubjectMark uint8

// Merge combines two marks of one subject.
func (m SubjectMark) Merge(o SubjectMark) SubjectMark { return m | o }

// Tally is what filtering one batch counted, for engines that combine the
// counts of many workers themselves (Filter.Apply keeps them in the
// filter instead).
type Tally struct {
	Rows  RowCounts
	Marks map[string]SubjectMark
}

// Classify sets keep[i] for every row of the batch (which must hold the
// subject_id and event_time columns) and returns what it counted, without
// touching the filter's own counts. keep is grown to the batch's length;
// the caller owns it.
func (f *Filter) Classify(b *dataset.Batch, keep []bool) ([]bool, Tally, error) {
	c := f.scratch.Get().(*classified)
	defer f.scratch.Put(c)
	keep, counts, err := f.classify(b, keep, c)
	if err != nil {
		return keep, Tally{}, err
	}
	t := Tally{Rows: counts, Marks: make(map[string]SubjectMark, len(c.marks))}
	dict := b.Column("subject_id").Str.Dict
	for x, m := range c.marks {
		if m != 0 {
			t.Marks[dict[x]] = m
		}
	}
	return keep, t, nil
}

// classified is what classify returns per dictionary entry of a batch:
// its mark (0 for a subject on no row of the batch), its key and its slot
// in the consent index (-1 if not there). Filters reuse them (Filter.
// scratch): a batch holds tens of thousands of subjects.
type classified struct {
	marks    []SubjectMark
	keys     []subjectKey
	slots    []int32
	decision []Reason
	flags    []uint8 // bit 0: a row kept; bit 1: a row outside the window; bit 2: a row
}

func (c *classified) reset(n int) {
	c.marks, c.keys, c.slots = grow(c.marks, n), grow(c.keys, n), grow(c.slots, n)
	c.decision, c.flags = grow(c.decision, n), grow(c.flags, n)
	clear(c.flags)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// classify decides each row and returns the row counts and, in c, what it
// found per dictionary entry.
func (f *Filter) classify(b *dataset.Batch, keep []bool, c *classified) ([]bool, RowCounts, error) {
	var counts RowCounts
	subj, times := b.Column("subject_id"), b.Column("event_time")
	if subj == nil || times == nil {
		return keep, counts, fmt.Errorf("%w: filtering needs the subject_id and event_time columns", ErrPolicy)
	}
	if cap(keep) < b.Rows {
		keep = make([]bool, b.Rows)
	}
	keep = keep[:b.Rows]
	dict := subj.Str.Dict
	c.reset(len(dict))
	decision, flags := c.decision, c.flags
	// Hash every token first, then look them up: lookups that do not
	// wait on hashing overlap their cache misses.
	for i, token := range dict {
		c.keys[i] = f.ix.keys.key(token)
	}
	for i, k := range c.keys {
		r, slot := f.decide(k)
		decision[i], c.slots[i] = r, int32(slot)
	}
	for i, x := range subj.Str.Index {
		r := decision[x]
		flag := uint8(4)
		switch t := times.Int[i]; {
		case r != Keep:
		case t < f.cutoff:
			r = ReasonExpired
			flag |= 2
		case t >= f.end:
			r = ReasonFuture
			flag |= 2
		default:
			flag |= 1
		}
		flags[x] |= flag
		keep[i] = r == Keep
		counts[r]++
	}
	for i := range dict {
		c.marks[i] = 0
		if flags[i] != 0 && (decision[i] != Keep || flags[i]&3 != 0) {
			c.marks[i] = SubjectMark(flags[i]&3 | uint8(decision[i])<<4)
		}
	}
	return keep, counts, nil
}

// Apply sets keep[i] for every row of the batch (which must hold the
// subject_id and event_time columns) and counts the drops. keep is grown to
// the batch's length; the caller owns it.
func (f *Filter) Apply(b *dataset.Batch, keep []bool) ([]bool, error) {
	c := f.scratch.Get().(*classified)
	defer f.scratch.Put(c)
	keep, counts, err := f.classify(b, keep, c)
	if err != nil {
		return keep, err
	}
	for r, n := range counts {
		f.rows[r].Add(n)
	}
	f.mu.Lock()
	for i, m := range c.marks {
		switch {
		case m == 0:
		case c.slots[i] >= 0:
			f.marks[c.slots[i]] |= m
		default:
			f.others[c.keys[i]] |= m
		}
	}
	f.mu.Unlock()
	return keep, nil
}

// Report is what a filtered read kept and dropped, and why.
type Report struct {
	Purposes []string `json:"purposes"`
	// Jurisdictions the run was restricted to (segregation), if any.
	Jurisdictions   []string         `json:"jurisdictions,omitempty"`
	LogicalDate     string           `json:"logical_date"`
	RetentionDays   int              `json:"retention_days"`
	RetentionStart  time.Time        `json:"retention_start"`
	RowsRead        int64            `json:"rows_read"`
	RowsKept        int64            `json:"rows_kept"`
	RowsDropped     map[string]int64 `json:"rows_dropped"`
	SubjectsSeen    int64            `json:"subjects_seen"`
	SubjectsKept    int64            `json:"subjects_kept"`
	SubjectsDropped map[string]int64 `json:"subjects_dropped"`
	Consent         ConsentStats     `json:"consent"`
}

// Report returns the counts so far.
func (f *Filter) Report() Report {
	var rows RowCounts
	for i := range numReasons {
		rows[i] = f.rows[i].Load()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ReportOf(rows, func(yield func(SubjectMark) bool) {
		for _, m := range f.marks {
			if m != 0 && !yield(m) {
				return
			}
		}
		for _, m := range f.others {
			if !yield(m) {
				return
			}
		}
	})
}

// ReportOf makes the report of counts combined elsewhere: the rows by
// reason, and each subject's merged mark.
func (f *Filter) ReportOf(rows RowCounts, marks iter.Seq[SubjectMark]) Report {
	r := Report{
		Purposes: f.names, Jurisdictions: f.zoneNames, LogicalDate: f.ix.LogicalDate.UTC().Format(time.DateOnly),
		RetentionDays: f.retention, RetentionStart: f.RetentionStart(),
		RowsDropped: map[string]int64{}, SubjectsDropped: map[string]int64{}, Consent: f.ix.Stats(),
	}
	for i := range numReasons {
		n := rows[i]
		r.RowsRead += n
		if i == Keep {
			r.RowsKept = n
		} else {
			r.RowsDropped[i.String()] = n
		}
	}
	for i := ReasonErased; i < numReasons; i++ {
		r.SubjectsDropped[i.String()] = 0
	}
	for v := range marks {
		r.SubjectsSeen++
		switch reason := Reason(v >> 4); {
		case v&1 != 0:
			r.SubjectsKept++
		case reason != Keep:
			r.SubjectsDropped[reason.String()]++
		default:
			r.SubjectsDropped[ReasonExpired.String()]++ // only rows outside the window
		}
	}
	return r
}

// FilteredScan opens the events that ref names for a job's purposes:
// it checks the columns against the policy (a disallowed column is never
// decoded), adds subject_id and event_time, and selects the dt= partitions
// inside the retention window.
func FilteredScan(ctx context.Context, pol *Policy, f *Filter, ref dataset.Ref, cols []string) (*dataset.Scan, error) {
	if err := pol.CheckColumns(f.names, cols); err != nil {
		return nil, err
	}
	need := []string{"subject_id", "event_time"}
	for _, c := range cols {
		if c != "subject_id" && c != "event_time" {
			need = append(need, c)
		}
	}
	w := dataset.Window{From: f.RetentionStart(), To: f.ix.LogicalDate}
	keys, err := dataset.Inputs(ctx, ref, w)
	if err != nil {
		return nil, err
	}
	return dataset.OpenScan(ctx, ref.Store, keys, dataset.EventsContract, need...)
}

// Decide returns Keep if the subject may be processed for every purpose at
// the index's logical date, else why not. Exports use it to check a second
// set of purposes (marketing) on subjects already selected.
func (ix *ConsentIndex) Decide(token string, purposes []string) Reason {
	v, ok := ix.lookup(ix.keys.key(token))
	if !ok {
		return ReasonNoConsent
	}
	if v&erasedBit != 0 {
		return ReasonErased
	}
	worst := Keep
	for _, name := range purposes {
		p := purposeIndex(name)
		if p < 0 {
			return ReasonNoConsent
		}
		r := stateReason(State(v >> (3 * p) & 7))
		if r != Keep && (worst == Keep || r < worst) {
			worst = r
		}
	}
	return worst
}

// JobTables are what a job that reads events names (segment and train jobs
// embed it): the tables, the policy and the jurisdictions it is limited to.
type JobTables struct {
	Events  string `yaml:"events"`  // URL of the events
	Consent string `yaml:"consent"` // default: consent/ next to events
	Erasure string `yaml:"erasure"` // default: erasure/ next to events
	Policy  string `yaml:"policy"`  // policy file; default: the pinned (VEIL_POLICY) or built-in policy
	// Jurisdictions, when set, limits the job to subjects whose latest
	// consent record names one of them (geographic segregation).
	Jurisdictions []string `yaml:"jurisdictions"`
}

// Validate checks what a job needs of its tables.
func (t *JobTables) Validate() error {
	if t.Events == "" {
		return fmt.Errorf("%w: events is required", ErrPolicy)
	}
	if slices.Contains(t.Jurisdictions, "") {
		return fmt.Errorf("%w: jurisdictions: empty name", ErrPolicy)
	}
	return nil
}

// URLs calls fn on each URL field (the policy path included), for
// rewriting them.
func (t *JobTables) URLs(fn func(*string)) {
	for _, p := range []*string{&t.Events, &t.Consent, &t.Erasure, &t.Policy} {
		fn(p)
	}
}

// Open loads the policy, checks the purposes and parses the table URLs
// (OpenJobInputs).
func (t *JobTables) Open(ctx context.Context, purposes []string, opt dataset.URLOptions) (*JobInputs, error) {
	return OpenJobInputs(ctx, t.Policy, t.Events, t.Consent, t.Erasure, purposes, opt)
}

// Restrict limits the filter to the jurisdictions, if any are set.
func (t *JobTables) Restrict(f *Filter) error {
	if len(t.Jurisdictions) == 0 {
		return nil
	}
	return f.RestrictJurisdictions(t.Jurisdictions)
}

// JobInputs are what a job that reads events opens first: its policy (the
// pinned one when the deployment pins it, else the job's or the built-in
// one; ResolvePolicy), its purposes checked, and its
// tables (consent and erasure default to the tables next to the events).
type JobInputs struct {
	Policy                   *Policy
	Events, Consent, Erasure dataset.Ref
}

// OpenJobInputs loads the policy, checks the job's purposes against it and
// parses the table URLs.
func OpenJobInputs(ctx context.Context, policyPath, events, consent, erasure string, purposes []string, opt dataset.URLOptions) (*JobInputs, error) {
	jp, err := ResolvePolicy(ctx, policyPath, opt)
	if err != nil {
		return nil, err
	}
	in := &JobInputs{Policy: jp.Policy}
	if err := in.Policy.CheckPurposes(purposes); err != nil {
		return nil, err
	}
	if in.Events, err = open.Ref(ctx, events, opt); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		url, name string
		ref       *dataset.Ref
	}{{consent, "consent", &in.Consent}, {erasure, "erasure", &in.Erasure}} {
		if t.url == "" {
			t.url = dataset.SiblingURL(events, t.name)
		}
		if *t.ref, err = open.Ref(ctx, t.url, opt); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Filtered is a job's consent filter over its events, ready to scan: what
// a job (or each worker of a distributed one) builds before reading.
type Filtered struct {
	Inputs *JobInputs
	Index  *ConsentIndex
	Filter *Filter
	// Columns are the event columns the job reads besides subject_id and
	// event_time.
	Columns []string
}

// OpenFiltered opens a job's inputs (checking the purposes it needs,
// need), builds the consent index of the date and the filter of the
// purposes it processes for (use), restricted to the job's jurisdictions.
func OpenFiltered(ctx context.Context, t JobTables, need, use, columns []string, day time.Time, opt dataset.URLOptions) (*Filtered, error) {
	in, err := t.Open(ctx, need, opt)
	if err != nil {
		return nil, err
	}
	return NewFiltered(ctx, t, in, use, columns, day)
}

// NewFiltered is OpenFiltered on opened inputs.
func NewFiltered(ctx context.Context, t JobTables, in *JobInputs, use, columns []string, day time.Time) (*Filtered, error) {
	ix, err := BuildConsentIndex(ctx, in.Policy, &in.Consent, &in.Erasure, day)
	if err != nil {
		return nil, err
	}
	flt, err := NewFilter(in.Policy, ix, use)
	if err != nil {
		return nil, err
	}
	if err := t.Restrict(flt); err != nil {
		return nil, err
	}
	return &Filtered{Inputs: in, Index: ix, Filter: flt, Columns: columns}, nil
}

// Scan opens the events the filter selects (the files of the retention
// window), projected to the job's columns.
func (f *Filtered) Scan(ctx context.Context) (*dataset.Scan, error) {
	return FilteredScan(ctx, f.Inputs.Policy, f.Filter, f.Inputs.Events, f.Columns)
}

// GuardPII runs the PII guard on the files the job reads (ErrPII, exit 3,
// on a finding).
func (f *Filtered) GuardPII(ctx context.Context) error {
	sc, err := f.Scan(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	_, err = ScanPII(ctx, sc.Store, sc.Keys, f.Inputs.Policy)
	return err
}

// Units names the row groups of a scan as "ROWGROUP KEY" strings, the
// units of work of a distributed read.
func Units(sc *dataset.Scan) []string {
	var units []string
	for _, u := range sc.Units() {
		units = append(units, fmt.Sprintf("%d %s", u.RowGroup, sc.Keys[u.File]))
	}
	return units
}
