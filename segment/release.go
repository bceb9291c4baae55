package segment

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
)

// The files of a segmentation run's steward report (DESIGN.md, "What
// leaves veil"), besides the contributors filter.
const (
	StewardReportFile   = "steward_report.json"
	StewardAppendixFile = "steward_appendix.md"
)

// StewardReport is what only the data steward may read of a segmentation
// run: the exact counts behind the release, the consent filter's drops by
// reason, the DP diagnostics measured on the private data, and the
// contributors filter.
type StewardReport struct {
	RunID       string          `json:"run_id"`
	LogicalDate string          `json:"logical_date"`
	Release     string          `json:"release"`
	NotDP       string          `json:"not_dp,omitempty"`
	Filter      privacy.Report  `json:"filter"`
	Subjects    int             `json:"subjects"`
	Events      int64           `json:"events_used"`
	Bounded     int             `json:"subjects_sampled_down"`
	K           int             `json:"k"`
	Inertia     float64         `json:"inertia,omitempty"`
	Silhouette  float64         `json:"silhouette,omitempty"`
	KScores     map[int]float64 `json:"k_silhouettes,omitempty"`
	Cohorts     []StewardCohort `json:"cohorts"`
	Suppressed  int             `json:"suppressed_subjects"`
	Exported    int             `json:"exported_assignments"`
	NotExported map[string]int  `json:"not_exported"`
	// Withheld are the cohorts whose rows were dropped from the export:
	// fewer of their subjects allow marketing than the floor.
	Withheld []WithheldCohort `json:"withheld_cohorts,omitempty"`
	// DP holds subjects_clipped and normalized_objective (which ran
	// non-private k-means on the private data for this report only).
	DP           *DPReport             `json:"dp,omitempty"`
	Contributors *lineage.Contributors `json:"contributors,omitempty"`
	// BudgetSetBy says who chose the budget the run was charged to: the
	// steward's policy, or the job when the policy declares no budgets.
	BudgetSetBy string `json:"budget_set_by,omitempty"`
}

// StewardCohort is a cohort's exact size beside its released one.
type StewardCohort struct {
	CohortID  int    `json:"cohort_id"`
	Size      int    `json:"size"`
	NoisySize *int64 `json:"noisy_size,omitempty"`
}

// noisy reports whether the run released noisy sizes: then no exact size
// or count may appear in the release. It is decided by the run's
// configuration as recorded in the report (a DP run always releases noisy
// sizes), never by what the data produced: a DP run without profiles is
// still a DP run.
func (r *Report) noisy() bool {
	return r.NoisySizes || r.DP != nil
}

// Private reports whether the run released noisy sizes or DP centres:
// then its exact figures (counts, the filter's drops, diagnostics,
// monitoring) go to the steward report only, and neither Public nor a
// run's metrics show them. Decided by the configuration, as noisy is.
func (r *Report) Private() bool { return r.noisy() }

// releasedProfiles are the profiles as released: without exact sizes when
// noisy sizes are released.
func (r *Report) releasedProfiles() []Profile {
	ps := slices.Clone(r.Profiles)
	if r.noisy() {
		for i := range ps {
			ps[i].Size = 0
		}
	}
	return ps
}

// Public returns the report as it may be shown beside the release (a
// printed run summary): with noisy sizes, without the exact counts, drop
// counts, DP diagnostics and the contributors filter, which are in the
// steward report. A run without noisy sizes is not DP and keeps them.
func (r *Report) Public() *Report {
	if !r.noisy() {
		return r
	}
	p := *r
	p.Filter = privacy.Report{}
	p.Subjects, p.Events, p.Bounded, p.Inertia, p.Silhouette, p.KScores = 0, 0, 0, 0, 0, nil
	p.Suppressed, p.Exported, p.NotExported, p.Contributors, p.Monitoring, p.Withheld = 0, 0, nil, nil, nil, nil
	if r.DP != nil {
		dp := *r.DP
		dp.Clipped, dp.NormalizedObjective = 0, 0
		p.DP = &dp
	}
	p.Profiles = r.releasedProfiles()
	return &p
}

// Steward returns the run's steward report.
func (r *Report) Steward() *StewardReport {
	s := &StewardReport{RunID: r.RunID, LogicalDate: r.LogicalDate, Release: r.Output, NotDP: r.NotDP, Filter: r.Filter,
		Subjects: r.Subjects, Events: r.Events, Bounded: r.Bounded, K: r.K, Inertia: r.Inertia, Silhouette: r.Silhouette, KScores: r.KScores,
		Suppressed: r.Suppressed, Exported: r.Exported, NotExported: maps.Clone(r.NotExported), Withheld: r.Withheld, DP: r.DP, Contributors: r.Contributors}
	for _, p := range r.Profiles {
		s.Cohorts = append(s.Cohorts, StewardCohort{CohortID: p.CohortID, Size: p.Size, NoisySize: p.NoisySize})
	}
	if r.Spent != nil {
		s.BudgetSetBy = release.SetByNote(r.Spent.SetBy)
	}
	return s
}

// writeSteward writes the steward report and its appendix to the datasheet.
func writeSteward(ctx context.Context, st *release.Steward, rep *Report, cfg Config) error {
	if err := st.PutJSON(ctx, StewardReportFile, rep.Steward()); err != nil {
		return err
	}
	return st.Output().PutFile(ctx, StewardAppendixFile, StewardAppendix(rep, cfg), 0)
}

// StewardAppendix is the part of a run's datasheet for the data steward
// only: what the public datasheet leaves out.
func StewardAppendix(rep *Report, cfg Config) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Steward appendix: customer cohorts for %s\n\n", rep.LogicalDate)
	p("Run `%s`. Release: `%s`. For the data steward only: these figures are exact, computed from the customers' data without noise, and must not be passed on with the release.\n\n", rep.RunID, rep.Output)
	if rep.NotDP != "" {
		p("The release is %s.\n\n", rep.NotDP)
	}
	f := rep.Filter
	p("## Input and consent filter\n\n")
	p("%d events read, %d kept; %d consent records as of the logical date. ", f.RowsRead, f.RowsKept, f.Consent.Records)
	var reasons []string
	for r, n := range f.RowsDropped {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s: %d", strings.ReplaceAll(r, "_", " "), n))
		}
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		p("Events dropped by reason: %s.", strings.Join(reasons, ", "))
	}
	p("\n\n%d customers clustered (%d events used; %d had more than %d events and were sampled down).\n\n", rep.Subjects, rep.Events, rep.Bounded, cfg.Features.MaxEvents)
	p("## Cohorts\n\n| cohort | exact size | released size |\n|---:|---:|---:|\n")
	for _, pr := range rep.Profiles {
		released := "exact"
		if pr.NoisySize != nil {
			released = fmt.Sprint(*pr.NoisySize)
		}
		p("| %d | %d | %s |\n", pr.CohortID, pr.Size, released)
	}
	p("\n%d customers suppressed by the floor of %d; %d exported; not exported: %v.\n\n", rep.Suppressed, cfg.Floor.MinSize, rep.Exported, rep.NotExported)
	for _, w := range rep.Withheld {
		p("- Cohort %d withheld from the assignments: %s.\n", w.CohortID, w.Reason)
	}
	if len(rep.Withheld) > 0 {
		p("\nA withheld cohort keeps its description in the profiles; its customers are in no exported row.\n\n")
	}
	if d := rep.DP; d != nil {
		p("## DP k-means diagnostics\n\n%d customers' feature vectors were clipped to radius %g. ", d.Clipped, d.ClipRadius)
		p("The DP centres' k-means objective is %.3f× that of non-private k-means on the same scaled, clipped data (run for this appendix only); ", d.NormalizedObjective)
		p("the silhouette of the DP cohorts on that data is %.3f.\n\n", rep.Silhouette)
	} else {
		p("## k-means\n\nk = %d, inertia %.4g, silhouette %.3f.\n\n", rep.K, rep.Inertia, rep.Silhouette)
	}
	if c := rep.Contributors; c != nil {
		p("## Contributors filter\n\n`%s`: a keyed Bloom filter (HMAC-SHA-256, key %s) of the %d customers clustered, sized for %d at a false-positive rate of %.2g. ", c.Filter, c.KeyID, rep.Subjects, c.Capacity, c.FPR)
		p("`veil lineage impact --subject TOKEN` tests erasure requests against it with the steward key.\n")
	}
	return b.Bytes()
}

// CheckEventsSchema reads the footers of the events table's files (no
// data pages) and checks the columns segmentation reads against the
// events contract: a wrong table is a *dataset.SchemaError (an input
// error, not retried), found before any budget is spent.
func CheckEventsSchema(ctx context.Context, events dataset.Ref) error {
	keys, err := dataset.Inputs(ctx, events, dataset.Window{})
	if err != nil {
		return err
	}
	cols := append([]string{"subject_id", "event_time"}, featureColumns...)
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, events.Store, k, dataset.EventsContract)
		if err != nil {
			return err
		}
		_, err = f.Project(cols...)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
