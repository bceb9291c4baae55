package jobs

import (
	"context"
	"slices"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/train"
)

// trainWork is a train step: item factors under subject-level DP-SGD,
// recommendations and a model card. As the kind of a result (StepResult.kind)
// c is nil.
type trainWork struct {
	consented
	c *train.JobConfig
}

func newTrainWork(c *train.JobConfig) trainWork {
	return trainWork{consented{t: &c.JobTables, output: &c.Output, steward: c.Steward, b: c.Budget, produces: "models", plans: c}, c}
}

func (w trainWork) validate() error { return w.c.Validate() }

func (w trainWork) doc() string {
	return "Train recommendation item factors under subject-level DP-SGD on the interactions of subjects who allow personalization; write factors, recommendations and a model card."
}

func (w trainWork) purposes() []string { return train.Purposes }

func (w trainWork) inZone(st *StepSpec, z *Zone) {
	c := *w.c
	if c.Budget != nil {
		b := *c.Budget
		c.Budget = &b
	}
	c.Jurisdictions = slices.Clone(z.Jurisdictions)
	st.Train = &c
}

// nonPrivate: training without DP (model.epsilon .inf) must be allowed
// by the step's policy before the pipeline's first step.
func (w trainWork) nonPrivate() string {
	if w.c.Model.Private() {
		return ""
	}
	return "model.epsilon .inf (training without differential privacy)"
}

func (w trainWork) plan() StepPlan {
	sp := w.consentedPlan("personalization (training and recommendations)")
	if !w.c.Model.Private() {
		sp.Releases = append(sp.Releases, "item factors WITHOUT differential privacy")
	}
	return sp
}

func (w trainWork) run(ctx context.Context, rs runStepEnv) (*StepResult, error) {
	cfg := *w.c
	cfg.RunID, cfg.Charged = rs.id, rs.charged
	if cfg.Steward == "" {
		cfg.Steward = stewardURL(rs.spec)
	}
	rep, err := train.Run(ctx, cfg, rs.opt.LogicalDate, rs.opt.URL, rs.opt.Log.With("step", rs.step))
	if err != nil {
		return nil, err
	}
	return &StepResult{Output: rep.Output, Train: rep}, nil
}

func (w trainWork) record(ctx context.Context, r *recorder, ev *lineage.Event, a *lineage.AuditRecord, sr *StepResult) {
	a.Reads, a.Purposes = []string{w.c.Events}, w.purposes()
	if sr == nil {
		return
	}
	rep := sr.Train
	p := w.recordRun(ctx, r, ev, a, rep.Filter, rep.LogicalDate, rep.Output, dataset.ItemFactorsContract, trainColumns, rep.Contributors, rep.DP())
	p.StewardReport = rep.Steward
	// epsilon and delta are what the ledger charged the run for all its
	// releases, broken down by release; the model's own guarantee is
	// dpsgd's, apart.
	if c := rep.Charged; c != nil {
		p.Epsilon, p.Delta, p.Accountant, p.Releases = c.Epsilon, c.Delta, c.Accountant, c.Releases
	}
	if g := rep.Guarantee; g != nil {
		p.DPSGD = &lineage.DPSGD{Unit: g.Unit, NoiseMultiplier: g.NoiseMultiplier, SamplingRate: g.SamplingRate, Steps: g.Steps, ClipNorm: g.Clip, MaxInteractions: g.MaxInteractions,
			Epsilon: g.Epsilon, Delta: g.Delta}
	}
	ev.Run.Facets["veil_privacy"] = p.Facet()
}

// trainColumns says how the item factors' columns follow from the events.
func trainColumns(events lineage.Dataset) lineage.Facet {
	in := func(field, typ, sub string, masking bool) lineage.InputField {
		return inputField(events, field, typ, sub, masking)
	}
	return lineage.ColumnLineage(map[string][]lineage.InputField{
		"item_id": {in("item_id", "DIRECT", "IDENTITY", false)},
		"bias":    {in("subject_id", "DIRECT", "AGGREGATION", true), in("item_id", "DIRECT", "AGGREGATION", true), in("event_type", "DIRECT", "AGGREGATION", true)},
		"vector":  {in("subject_id", "DIRECT", "AGGREGATION", true), in("item_id", "DIRECT", "AGGREGATION", true), in("event_type", "DIRECT", "AGGREGATION", true)},
	}, []lineage.InputField{in("subject_id", "INDIRECT", "FILTER", false)})
}

// observe exports a training step's metrics: the ledger's charge and the
// model's guarantee; the rest only without a DP release.
func (trainWork) observe(m *Metrics, r StepResult) {
	s := r.Train
	if c := s.Charged; c != nil {
		m.epsilon.WithLabelValues(m.job, r.Step).Set(c.Epsilon) // the ledger's charge, not the model's guarantee
	}
	if g := s.Guarantee; g != nil {
		m.guarantee.WithLabelValues(m.job, r.Step).Set(g.Epsilon)
	}
	if !s.DP() {
		m.filter(r.Step, s.Filter)
		m.recall.WithLabelValues(m.job, r.Step).Set(s.Eval.Model.Recall20)
		m.warnings.WithLabelValues(m.job, r.Step).Set(float64(len(s.Warnings)))
	}
}

func (trainWork) public(r *StepResult) { r.Train = r.Train.Public() }
