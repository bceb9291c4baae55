package access

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/pseudonym"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

// ErrErased is returned (wrapped) when the report is asked for a subject
// who requested erasure: only the confirmation of erasure may be given.
// It is a refusal by policy (exit code 3).
var ErrErased = fmt.Errorf("%w: the subject asked for erasure; only the erasure can be confirmed (--confirm-erasure)", privacy.ErrRefused)

// Options say whose report to build and how.
type Options struct {
	Subject     string    // the pseudonymous token
	LogicalDate time.Time // consent as of this day (UTC)
	// ConfirmErasure asks only whether the subject is erased: the report
	// of an erased subject holds that and nothing else.
	ConfirmErasure bool
	Principal      string         // who asks, for the audit log
	StewardKey     *pseudonym.Key // keys the contributors filters (nil: none configured)
	URL            dataset.URLOptions
	Now            func() time.Time // nil: time.Now
}

// Report is a subject access report. It holds personal data: it is for
// the steward who answers the subject's request, and the subject.
type Report struct {
	Subject     string    `json:"subject"`
	LogicalDate string    `json:"logical_date"`
	Generated   time.Time `json:"generated_at"`
	Principal   string    `json:"generated_by"`
	Erased      bool      `json:"erased"`
	// ErasureCheckOnly: the steward asked only whether the subject is
	// erased (--confirm-erasure); nothing else was read.
	ErasureCheckOnly bool `json:"erasure_check_only,omitempty"`
	// ErasureRequested is when the subject asked for erasure, if it did.
	ErasureRequested *time.Time `json:"erasure_requested_at,omitempty"`
	Consent          []Purpose  `json:"consent,omitempty"`
	// Runs are the completed runs whose contributors filter may hold the
	// subject, with the outputs they wrote and the budget they charged.
	Runs            []Run            `json:"runs,omitempty"`
	Cohorts         []Cohort         `json:"cohorts,omitempty"`
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// FiltersMissing are contributors filters that are gone (outputs
	// purged): they could not be checked.
	FiltersMissing []string `json:"filters_missing,omitempty"`
	RunsChecked    int      `json:"runs_checked"`
}

// Purpose is the subject's standing for one purpose and the records of
// the consent table that decided it.
type Purpose struct {
	Purpose string   `json:"purpose"`
	State   string   `json:"state"`
	Records []Record `json:"deciding_records,omitempty"`
}

// Record is one consent record of the subject.
type Record struct {
	Purpose      string    `json:"purpose,omitempty"` // empty: a TC string, for every purpose
	Status       string    `json:"status"`
	RecordedAt   time.Time `json:"recorded_at"`
	Source       string    `json:"source"`
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	TCString     bool      `json:"tc_string,omitempty"`
}

// Run is a run that may hold the subject's data.
type Run struct {
	RunID       string   `json:"run_id"`
	Job         string   `json:"job"`
	LogicalDate string   `json:"logical_date"`
	Outputs     []string `json:"outputs"`
	// FPR is the false-positive rate of the run's contributors filter.
	FPR float64 `json:"false_positive_rate"`
	// Epsilon and Delta are what the ledger charged the run for all its
	// DP releases (nil: the run made no DP release).
	Epsilon *float64 `json:"epsilon,omitempty"`
	Delta   *float64 `json:"delta,omitempty"`
	// Releases break the charge down: each DP release of the ledger
	// record and its ε alone at Delta.
	Releases []Release `json:"releases,omitempty"`
}

// Release is one DP release of a run's ledger record.
type Release struct {
	Release string  `json:"release"`
	Epsilon float64 `json:"epsilon"`
}

// Cohort is the subject's cohort in one segmentation output.
type Cohort struct {
	RunID       string  `json:"run_id"`
	Output      string  `json:"output"`
	CohortID    int64   `json:"cohort_id"`
	Distance    float64 `json:"distance"`
	Explanation string  `json:"explanation"`
}

// Recommendation is one of the subject's recommendations and why.
type Recommendation struct {
	RunID         string    `json:"run_id"`
	Output        string    `json:"output"`
	Rank          int64     `json:"rank"`
	ItemID        string    `json:"item_id"`
	Score         float64   `json:"score"`
	BecauseItems  []string  `json:"because_items,omitempty"`
	BecauseShares []float64 `json:"because_shares,omitempty"`
	List          string    `json:"list,omitempty"`
}

// tables returns the tables of the spec's first step that reads events,
// and the purposes to open them for: the spec's, else the step's.
func tables(spec *jobs.Spec) (privacy.JobTables, []string, error) {
	if spec.Segregation != nil {
		// Each zone has its own consent and erasure tables: the report of
		// one subject is the report of one zone's pipeline.
		return privacy.JobTables{}, nil, fmt.Errorf("%w: %s is segregated into zones, each with its own consent and erasure tables: give the spec of the subject's zone", jobs.ErrSpec, spec.Name)
	}
	for _, st := range spec.Expanded() {
		or := func(def []string) []string {
			if len(spec.Purposes) > 0 {
				return spec.Purposes
			}
			return def
		}
		switch {
		case st.Segment != nil:
			return st.Segment.JobTables, or([]string{privacy.Segmentation}), nil
		case st.Train != nil:
			return st.Train.JobTables, or(train.Purposes), nil
		}
	}
	return privacy.JobTables{}, nil, fmt.Errorf("%w: no step of %s reads events", jobs.ErrSpec, spec.Name)
}

// Build builds the report of opt.Subject in the pipeline of spec and
// appends who asked for it to the pipeline's audit log (also when it is
// refused). An erased subject's report is refused with ErrErased unless
// opt.ConfirmErasure, in which case it says only that.
func Build(ctx context.Context, spec *jobs.Spec, opt Options) (rep *Report, err error) {
	if opt.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", jobs.ErrSpec)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	day := opt.LogicalDate.UTC().Truncate(24 * time.Hour)
	generated, date := now().UTC(), day.Format(time.DateOnly)
	rep = &Report{Subject: opt.Subject, LogicalDate: date, Generated: generated, Principal: opt.Principal}
	// Every attempt is audited, also one that fails before anything is
	// read.
	reads := []string{}
	defer func() {
		outcome, msg := "completed", ""
		if err != nil {
			outcome, msg = "refused", err.Error()
			if !errors.Is(err, privacy.ErrRefused) {
				outcome = "failed"
			}
		}
		a := lineage.AuditRecord{Time: generated, Principal: opt.Principal, Action: "subject-report", Job: "subject report of " + spec.Name,
			LogicalDate: date, Reads: append([]string{"subject " + opt.Subject}, reads...), Outcome: outcome, Error: msg}
		if aerr := appendAudit(ctx, spec, opt.URL, a); aerr != nil {
			err = errors.Join(err, fmt.Errorf("writing the audit log: %w", aerr))
		}
	}()
	t, purposes, err := tables(spec)
	if err != nil {
		return nil, err
	}
	in, err := t.Open(ctx, purposes, opt.URL)
	if err != nil {
		return nil, err
	}
	reads = append(reads, in.Consent.String(), in.Erasure.String())

	ix, err := privacy.BuildConsentIndex(ctx, in.Policy, &in.Consent, &in.Erasure, day)
	if err != nil {
		return nil, err
	}
	if rep.ErasureRequested, err = erasureOf(ctx, in.Erasure, opt.Subject); err != nil {
		return nil, err
	}
	rep.Erased = ix.Erased(opt.Subject) || rep.ErasureRequested != nil
	if rep.Erased {
		if !opt.ConfirmErasure {
			return nil, ErrErased
		}
		return rep, nil
	}
	if opt.ConfirmErasure {
		rep.ErasureCheckOnly = true
		return rep, nil
	}
	records, err := consentOf(ctx, in.Consent, opt.Subject, day)
	if err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(mapsKeys(in.Policy.Purposes)) {
		st := ix.State(opt.Subject, p)
		rep.Consent = append(rep.Consent, Purpose{Purpose: p, State: st.String(), Records: deciding(records, p, st, in.Policy)})
	}

	g, err := graph(ctx, spec, opt.URL)
	if err != nil {
		return nil, err
	}
	reads = append(reads, "lineage of "+spec.Name)
	hits, checked, missing, err := g.Impact(ctx, opt.Subject, opt.StewardKey, opt.URL)
	if err != nil {
		return nil, err
	}
	rep.RunsChecked, rep.FiltersMissing = checked, missing
	for _, h := range hits {
		r := Run{RunID: h.RunID, Job: h.Job, LogicalDate: h.LogicalDate, Outputs: h.Outputs, FPR: h.FPR}
		if f, ok := g.Runs[h.RunID].Facets["veil_privacy"]; ok {
			if e, ok := f["epsilon"].(float64); ok {
				r.Epsilon = &e
			}
			if d, ok := f["delta"].(float64); ok {
				r.Delta = &d
			}
			rs, _ := f["releases"].([]any)
			for _, x := range rs {
				m, _ := x.(map[string]any)
				name, _ := m["release"].(string)
				e, _ := m["epsilon"].(float64)
				r.Releases = append(r.Releases, Release{Release: name, Epsilon: e})
			}
		}
		rep.Runs = append(rep.Runs, r)
		for _, out := range h.Outputs {
			reads = append(reads, out)
			if err := rep.readOutput(ctx, h.RunID, out, opt.URL); err != nil {
				return nil, err
			}
		}
	}
	if ix.State(opt.Subject, privacy.Personalization) != privacy.Granted {
		// What the shop shows a subject without personalization consent:
		// the latest non-personalized list up to the date.
		out, run, err := latestNonPersonalized(ctx, g, date, opt.URL)
		if err != nil {
			return nil, err
		}
		if out != "" {
			reads = append(reads, out)
			if err := rep.readNonPersonalized(ctx, run, out, opt.URL); err != nil {
				return nil, err
			}
		}
	}
	return rep, nil
}

// latestNonPersonalized returns the output (and its run) of the latest
// completed run up to date whose release holds a non-personalized list.
func latestNonPersonalized(ctx context.Context, g *lineage.Graph, date string, opt dataset.URLOptions) (output, runID string, err error) {
	var best *lineage.RunNode
	var bestDate string
	for _, r := range g.Runs {
		if r.State != "COMPLETE" {
			continue
		}
		d, _ := r.Facets["veil_privacy"]["logicalDate"].(string)
		if d == "" || d > date || len(r.Outputs) == 0 || (best != nil && (d < bestDate || d == bestDate && !r.Ended.After(best.Ended))) {
			continue
		}
		for _, o := range r.Outputs {
			ref, err := open.Ref(ctx, o.URL(), opt)
			if err != nil {
				return "", "", err
			}
			m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
			if err != nil {
				continue // not a committed output (gone, or another kind)
			}
			if _, ok := m.Find(train.NonPersonalizedFile); ok {
				best, bestDate, output = r, d, o.URL()
			}
		}
	}
	if best == nil {
		return "", "", nil
	}
	return output, best.RunID, nil
}

// readNonPersonalized adds the non-personalized list of an output.
func (rep *Report) readNonPersonalized(ctx context.Context, runID, url string, opt dataset.URLOptions) error {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return err
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		return err
	}
	f, _ := m.Find(train.NonPersonalizedFile)
	return readFile(ctx, ref, f.Key, nonPersonalizedContract, func(r dataset.NonPersonalized) {
		rep.Recommendations = append(rep.Recommendations, Recommendation{RunID: runID, Output: url, Rank: r.Rank, ItemID: r.ItemID, Score: r.Score, List: r.List})
	})
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// graph reads the pipeline's lineage records.
func graph(ctx context.Context, spec *jobs.Spec, opt dataset.URLOptions) (*lineage.Graph, error) {
	url := spec.Lineage.Store
	if url == "" {
		url = dataset.ChildURL(spec.State, "lineage")
	}
	store, err := open.Store(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	events, err := lineage.ReadEvents(ctx, store, "")
	if err != nil {
		return nil, err
	}
	return lineage.BuildGraph(events), nil
}

// appendAudit appends a record to the pipeline's audit log.
func appendAudit(ctx context.Context, spec *jobs.Spec, opt dataset.URLOptions, a lineage.AuditRecord) error {
	url := spec.Audit
	if url == "" {
		url = dataset.ChildURL(spec.State, "audit")
	}
	store, err := open.Store(ctx, url, opt)
	if err != nil {
		return err
	}
	return lineage.OpenAudit(store, "").Append(context.WithoutCancel(ctx), a)
}

// readRows calls fn with every row of the table at ref.
func readRows[T any](ctx context.Context, ref dataset.Ref, c *dataset.Contract, fn func(T)) error {
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if errors.Is(err, dataset.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s table: %w", c.Name, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, ref.Store, k, c)
		if err != nil {
			return err
		}
		err = dataset.ReadRows(ctx, f, func(rows []T) error {
			for _, r := range rows {
				fn(r)
			}
			return nil
		})
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// erasureOf returns when the subject first asked for erasure, or nil.
func erasureOf(ctx context.Context, ref dataset.Ref, subject string) (*time.Time, error) {
	var at *time.Time
	err := readRows(ctx, ref, dataset.ErasureContract, func(r dataset.Erasure) {
		if r.SubjectID == subject && (at == nil || r.RequestedAt.Before(*at)) {
			t := r.RequestedAt.UTC()
			at = &t
		}
	})
	return at, err
}

// consentOf returns the subject's consent records up to the end of day,
// oldest first.
func consentOf(ctx context.Context, ref dataset.Ref, subject string, day time.Time) ([]Record, error) {
	cutoff := day.AddDate(0, 0, 1)
	var out []Record
	err := readRows(ctx, ref, dataset.ConsentContract, func(r dataset.Consent) {
		if r.SubjectID != subject || !r.RecordedAt.Before(cutoff) {
			return
		}
		rec := Record{Status: r.Status, RecordedAt: r.RecordedAt.UTC(), Source: r.Source, TCString: r.TCString != nil && *r.TCString != ""}
		if r.Purpose != nil {
			rec.Purpose = *r.Purpose
		}
		if r.Jurisdiction != nil {
			rec.Jurisdiction = *r.Jurisdiction
		}
		out = append(out, rec)
	})
	slices.SortStableFunc(out, func(a, b Record) int { return a.RecordedAt.Compare(b.RecordedAt) })
	return out, err
}

// deciding returns the records that decide a purpose's state, as
// privacy.BuildConsentIndex reads them: for an opt-out, the opt-out
// records; otherwise the latest record naming the purpose (or a TC string,
// which speaks for every purpose), of two at the same time the one that
// does not grant.
func deciding(records []Record, purpose string, st privacy.State, pol *privacy.Policy) []Record {
	if st == privacy.OptedOut {
		var out []Record
		for _, r := range records {
			if slices.Contains(pol.OptOut.Sources, r.Source) && r.Status != "granted" {
				out = append(out, r)
			}
		}
		return out
	}
	var best *Record
	for i, r := range records {
		if r.Purpose != purpose && !(r.Purpose == "" && r.TCString) {
			continue
		}
		if best == nil || r.RecordedAt.After(best.RecordedAt) || (r.RecordedAt.Equal(best.RecordedAt) && r.Status != "granted") {
			best = &records[i]
		}
	}
	if best == nil {
		return nil
	}
	return []Record{*best}
}

// readOutput adds what a committed output holds about the subject: its
// cohort (assignments.parquet, profiles.json) or its recommendations.
func (rep *Report) readOutput(ctx context.Context, runID, url string, opt dataset.URLOptions) error {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return err
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if errors.Is(err, dataset.ErrNotExist) {
		return nil // purged
	}
	if err != nil {
		return err
	}
	read := func(name string) ([]byte, bool, error) {
		f, ok := m.Find(name)
		if !ok {
			return nil, false, nil
		}
		b, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
		return b, err == nil, err
	}
	if f, ok := m.Find(assignmentsFile); ok {
		var found *Cohort
		err := readFile(ctx, ref, f.Key, dataset.CohortAssignmentsContract, func(r dataset.CohortAssignment) {
			if r.SubjectID == rep.Subject {
				found = &Cohort{RunID: runID, Output: url, CohortID: r.CohortID, Distance: r.Distance}
			}
		})
		if err != nil || found == nil {
			return err
		}
		if b, ok, err := read(profilesFile); err != nil {
			return err
		} else if ok {
			var profiles []segment.Profile
			if err := json.Unmarshal(b, &profiles); err != nil {
				return fmt.Errorf("reading %s of %s: %w", profilesFile, url, err)
			}
			for _, p := range profiles {
				if int64(p.CohortID) == found.CohortID {
					found.Explanation = p.Explanation
				}
			}
		}
		rep.Cohorts = append(rep.Cohorts, *found)
	}
	if f, ok := m.Find(train.RecommendationsFile); ok {
		var recs []Recommendation
		err := readFile(ctx, ref, f.Key, dataset.RecommendationsContract, func(r dataset.ExplainedRecommendation) {
			if r.SubjectID == rep.Subject {
				recs = append(recs, Recommendation{RunID: runID, Output: url, Rank: r.Rank, ItemID: r.ItemID, Score: r.Score, BecauseItems: r.BecauseItems, BecauseShares: r.BecauseShares})
			}
		})
		if err != nil {
			return err
		}
		slices.SortFunc(recs, func(a, b Recommendation) int { return cmp.Compare(a.Rank, b.Rank) })
		rep.Recommendations = append(rep.Recommendations, recs...)
	}
	return nil
}

func readFile[T any](ctx context.Context, ref dataset.Ref, key string, c *dataset.Contract, fn func(T)) error {
	f, err := dataset.OpenParquet(ctx, ref.Store, dataset.Join(ref.Key, key), c)
	if err != nil {
		return err
	}
	defer f.Close()
	return dataset.ReadRows(ctx, f, func(rows []T) error {
		for _, r := range rows {
			fn(r)
		}
		return nil
	})
}

// Markdown renders the report for the subject and the steward.
func (rep *Report) Markdown() []byte {
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p("# Subject access report: %s\n\n", rep.Subject)
	p("As of %s; generated %s by %s.\n\n", rep.LogicalDate, rep.Generated.Format(time.RFC3339), rep.Principal)
	if rep.Erased {
		p("**This subject asked for erasure**")
		if rep.ErasureRequested != nil {
			p(" on %s", rep.ErasureRequested.Format(time.RFC3339))
		}
		p(": it is left out of every job from then on, and nothing else is reported about it.\n")
		return []byte(b.String())
	}
	if rep.ErasureCheckOnly {
		p("**No erasure request of this subject is on record** as of %s. Only erasure was checked (--confirm-erasure): this is not a report of what is held about the subject.\n", rep.LogicalDate)
		return []byte(b.String())
	}
	p("## Consent\n\n| purpose | state | deciding records |\n|---|---|---|\n")
	for _, c := range rep.Consent {
		var rs []string
		for _, r := range c.Records {
			what := r.Purpose
			if r.TCString {
				what = "TC string"
			}
			rs = append(rs, fmt.Sprintf("%s %s via %s at %s", what, r.Status, r.Source, r.RecordedAt.Format(time.RFC3339)))
		}
		if len(rs) == 0 {
			rs = []string{"no record: no consent"}
		}
		p("| %s | %s | %s |\n", c.Purpose, c.State, strings.Join(rs, "; "))
	}
	p("\n## Runs and outputs that hold this subject's data\n\n")
	p("%d completed runs checked (contributors filters; a listed run may be a false positive at its rate).\n\n", rep.RunsChecked)
	if len(rep.Runs) == 0 {
		p("None.\n\n")
	} else {
		p("| run | job | logical date | ledger charge covering the run's DP releases (ε, δ) | outputs |\n|---|---|---|---|---|\n")
		for _, r := range rep.Runs {
			dp := "none (no DP release)"
			if r.Epsilon != nil && r.Delta != nil {
				dp = fmt.Sprintf("ε = %.4g, δ = %.3g", *r.Epsilon, *r.Delta)
			}
			p("| %s | %s | %s | %s | %s |\n", r.RunID, r.Job, r.LogicalDate, dp, strings.Join(r.Outputs, ", "))
		}
		p("\n")
	}
	for _, r := range rep.Runs {
		if len(r.Releases) == 0 || r.Delta == nil {
			continue
		}
		p("DP releases of the ledger record covering run %s (each one's ε alone at δ = %.3g):\n\n", r.RunID, *r.Delta)
		for _, x := range r.Releases {
			p("- %s: ε = %.4g\n", x.Release, x.Epsilon)
		}
		p("\n")
	}
	for _, m := range rep.FiltersMissing {
		p("- filter gone (output purged?): %s\n", m)
	}
	p("## Cohorts\n\n")
	if len(rep.Cohorts) == 0 {
		p("In no cohort export.\n\n")
	}
	for _, c := range rep.Cohorts {
		p("- cohort %d of run %s: %s\n", c.CohortID, c.RunID, c.Explanation)
	}
	if len(rep.Cohorts) > 0 {
		p("\n")
	}
	p("## Recommendations\n\n")
	var personal, list []Recommendation
	for _, r := range rep.Recommendations {
		if r.List != "" {
			list = append(list, r)
		} else {
			personal = append(personal, r)
		}
	}
	if len(personal) == 0 {
		p("No personalized recommendations.\n\n")
	} else {
		p("| run | rank | product | score | because (share) |\n|---|---:|---|---:|---|\n")
		for _, r := range personal {
			var why []string
			for i, it := range r.BecauseItems {
				why = append(why, fmt.Sprintf("%s (%.0f%%)", it, 100*r.BecauseShares[i]))
			}
			p("| %s | %d | %s | %.4f | %s |\n", r.RunID, r.Rank, r.ItemID, r.Score, strings.Join(why, ", "))
		}
		p("\n")
	}
	if len(list) > 0 {
		p("Without personalization consent the subject is shown the list of run %s instead, %s:\n\n| rank | product | score |\n|---:|---|---:|\n", list[0].RunID, list[0].List)
		for _, r := range list {
			p("| %d | %s | %.4f |\n", r.Rank, r.ItemID, r.Score)
		}
	}
	return []byte(b.String())
}

// nonPersonalizedContract is the schema of train.NonPersonalizedFile.
var nonPersonalizedContract = &dataset.Contract{Name: "nonpersonalized", Version: 1, Columns: []dataset.Column{
	{Name: "rank", Kind: dataset.KindInt64, Doc: "1 for the first"},
	{Name: "item_id", Kind: dataset.KindString, Doc: "product id"},
	{Name: "score", Kind: dataset.KindDouble, Doc: "popularity prior of the DP item counts"},
	{Name: "list", Kind: dataset.KindString, Doc: "the list's label"},
}}

// Files of a segmentation run's output that name subjects and explain
// cohorts (segment.Run writes them).
const (
	assignmentsFile = "assignments.parquet"
	profilesFile    = "profiles.json"
)
