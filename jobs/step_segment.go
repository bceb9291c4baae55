package jobs

import (
	"context"
	"slices"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
)

// segmentWork is a segment step: k-means cohorts of the subjects who allow
// segmentation, exported for those who also allow marketing. As the kind of
// a result (StepResult.kind) c is nil.
type segmentWork struct {
	consented
	c *segment.Config
}

func newSegmentWork(c *segment.Config) segmentWork {
	return segmentWork{consented{t: &c.JobTables, output: &c.Output, steward: c.Steward, b: c.Budget, produces: "exports", plans: c}, c}
}

func (w segmentWork) validate() error { return w.c.Validate() }

func (w segmentWork) doc() string {
	return "Segment subjects who allow segmentation into cohorts with k-means; export cohort assignments of subjects who also allow marketing."
}

func (w segmentWork) purposes() []string { return []string{privacy.Segmentation, privacy.Marketing} }

func (w segmentWork) inZone(st *StepSpec, z *Zone) {
	c := *w.c
	if c.Budget != nil {
		b := *c.Budget
		c.Budget = &b
	}
	c.Jurisdictions = slices.Clone(z.Jurisdictions)
	st.Segment = &c
}

func (w segmentWork) plan() StepPlan {
	sp := w.consentedPlan("segmentation (build)", "marketing (export)")
	if w.c.Privacy == nil {
		sp.Releases = append(sp.Releases, "cohort centres and members WITHOUT differential privacy")
	}
	return sp
}

func (w segmentWork) run(ctx context.Context, rs runStepEnv) (*StepResult, error) {
	cfg := *w.c
	cfg.RunID, cfg.Charged = rs.id, rs.charged
	if cfg.Steward == "" {
		cfg.Steward = stewardURL(rs.spec)
	}
	rep, err := segment.Run(ctx, cfg, rs.opt.LogicalDate, rs.opt.URL, rs.opt.Log.With("step", rs.step))
	if err != nil {
		return nil, err
	}
	return &StepResult{Output: rep.Output, Segment: rep}, nil
}

func (w segmentWork) record(ctx context.Context, r *recorder, ev *lineage.Event, a *lineage.AuditRecord, sr *StepResult) {
	a.Reads, a.Purposes = []string{w.c.Events}, w.purposes()
	if sr == nil {
		return
	}
	rep := sr.Segment
	// A run that releases noisy sizes (DP k-means or not) has a public
	// report without exact counts: so has its lineage.
	withheld := rep.Public() != rep
	p := w.recordRun(ctx, r, ev, a, rep.Filter, rep.LogicalDate, rep.Output, dataset.CohortAssignmentsContract, segmentColumns, rep.Contributors, withheld)
	p.StewardReport = rep.StewardReport
	p.CohortFloor = w.c.Floor.MinSize
	if rep.Spent != nil {
		p.Epsilon, p.Delta, p.Accountant = rep.Spent.Epsilon, rep.Spent.Delta, rep.Spent.Accountant
	}
	if rep.DP != nil {
		p.ClipNorm = rep.DP.ClipRadius
	}
	ev.Run.Facets["veil_privacy"] = p.Facet()
}

// segmentColumns says how the cohort assignments' columns follow from the
// events.
func segmentColumns(events lineage.Dataset) lineage.Facet {
	in := func(field, typ, sub string) lineage.InputField { return inputField(events, field, typ, sub, false) }
	features := []lineage.InputField{in("event_type", "DIRECT", "AGGREGATION"), in("category", "DIRECT", "AGGREGATION"), in("value", "DIRECT", "AGGREGATION"), in("event_time", "DIRECT", "AGGREGATION")}
	return lineage.ColumnLineage(map[string][]lineage.InputField{
		"subject_id": {in("subject_id", "DIRECT", "IDENTITY")},
		"cohort_id":  features,
		"distance":   features,
	}, []lineage.InputField{in("subject_id", "INDIRECT", "FILTER")})
}

// observe exports a segmentation step's metrics; one that made a DP
// release exports the ledger's charge only.
func (segmentWork) observe(m *Metrics, r StepResult) {
	s := r.Segment
	if s.Spent != nil {
		m.epsilon.WithLabelValues(m.job, r.Step).Set(s.Spent.Epsilon)
	}
	if !s.Private() {
		m.filter(r.Step, s.Filter)
		if mo := s.Monitoring; mo != nil {
			m.warnings.WithLabelValues(m.job, r.Step).Set(float64(len(mo.Warnings)))
			if mo.Drift != nil {
				m.drift.WithLabelValues(m.job, r.Step).Set(mo.Drift.Max.PSI)
			}
		}
	}
}

func (segmentWork) public(r *StepResult) { r.Segment = r.Segment.Public() }
