package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
)

// Metrics collects a run's Prometheus metrics, for the node_exporter
// textfile collector or a Pushgateway (the conventions for batch jobs).
type Metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.GaugeVec
	rowsRead *prometheus.GaugeVec
	dropped  *prometheus.GaugeVec
	epsilon  *prometheus.GaugeVec
	// guarantee is a DP model's own ε (public: on its model card).
	guarantee *prometheus.GaugeVec
	recall    *prometheus.GaugeVec
	warnings  *prometheus.GaugeVec
	drift     *prometheus.GaugeVec
	success   *prometheus.GaugeVec
	status    *prometheus.GaugeVec
	job       string
}

// NewMetrics returns the metrics of a job.
func NewMetrics(job string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), job: job}
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	m.duration = g("veil_step_duration_seconds", "Duration of the last run of a step.", "job", "step")
	m.rowsRead = g("veil_step_rows_read", "Rows read by the last run of a step without a DP release.", "job", "step")
	m.dropped = g("veil_step_rows_dropped", "Rows dropped in the last run of a step, by reason (privacy filter or input mapping), of a step without a DP release.", "job", "step", "reason")
	m.epsilon = g("veil_step_epsilon_spent", "Privacy budget (epsilon) spent by the last run of a step.", "job", "step")
	m.guarantee = g("veil_train_model_epsilon", "Epsilon of the differential privacy guarantee of the model of the last run of a training step (on its model card).", "job", "step")
	m.recall = g("veil_train_recall_at_20", "Recall@20 on held-out interactions of the model of the last run of a training step without a DP release.", "job", "step")
	m.warnings = g("veil_step_monitoring_warnings", "Monitoring warnings (drift, over- or under-represented groups, exposure, weak δ) of the last run of a step without a DP release.", "job", "step")
	m.drift = g("veil_step_drift_psi_max", "Largest population stability index of a feature against the previous run, of the last run of a segmentation step without a DP release.", "job", "step")
	m.success = g("veil_job_last_success_timestamp_seconds", "Unix time of the last successful run.", "job")
	m.status = g("veil_job_last_run_ok", "1 if the last run succeeded or was a no-op, 0 if it failed.", "job")
	return m
}

// Step records a finished step. A step that made a DP release exports its
// duration, the ledger's charge and its model's guarantee only: rows read
// and dropped by reason (differencing two days' erased counts tells one
// person's erasure), recall on the private holdout, warnings and drift
// are exact figures of the private data, in the steward report only
// (DESIGN.md, "What leaves veil"), as Report.Public leaves them out.
func (m *Metrics) Step(r StepResult) {
	m.duration.WithLabelValues(m.job, r.Step).Set(r.Seconds)
	if k := r.kind(); k != nil {
		k.observe(m, r)
	}
}

// filter records the consent filter's counts of a step without a DP
// release.
func (m *Metrics) filter(step string, f privacy.Report) {
	m.rowsRead.WithLabelValues(m.job, step).Set(float64(f.RowsRead))
	for reason, n := range f.RowsDropped {
		m.dropped.WithLabelValues(m.job, step, reason).Set(float64(n))
	}
}

// Finish records the outcome of the run.
func (m *Metrics) Finish(ok bool, now time.Time) {
	if ok {
		m.status.WithLabelValues(m.job).Set(1)
		m.success.WithLabelValues(m.job).Set(float64(now.Unix()))
	} else {
		m.status.WithLabelValues(m.job).Set(0)
	}
}

// Write sends the metrics where the spec says.
func (m *Metrics) Write(spec MetricsSpec) error {
	if spec.Textfile != "" {
		if err := prometheus.WriteToTextfile(spec.Textfile, m.reg); err != nil {
			return fmt.Errorf("writing metrics to %s: %w", spec.Textfile, err)
		}
	}
	if spec.Pushgateway != "" {
		if err := push.New(spec.Pushgateway, "veil").Grouping("veil_job", m.job).Gatherer(m.reg).Push(); err != nil {
			return fmt.Errorf("pushing metrics to %s: %w", spec.Pushgateway, err)
		}
	}
	return nil
}

// Plan says what a run would do without reading data.
type Plan struct {
	Job   string     `json:"job"`
	Steps []StepPlan `json:"steps"`
	// Charges are what the run charges each budget: every DP release of
	// every step, composed; checked and spent as one ledger record per
	// budget before the first step reads data.
	Charges []*Charge `json:"charges,omitempty"`
}

// StepPlan is one step of a Plan.
type StepPlan struct {
	Step      string   `json:"step"`
	DependsOn []string `json:"depends_on,omitempty"`
	Reads     []string `json:"reads"`
	Purposes  []string `json:"purposes"`
	Writes    string   `json:"writes"`
	Releases  []string `json:"dp_releases,omitempty"`
	// Epsilon is the step's releases composed, at its budget's δ.
	Epsilon float64 `json:"epsilon_planned,omitempty"`
	Budget  string  `json:"budget,omitempty"`
}

// MakePlan lists the steps in order with their inputs, outputs and planned
// DP releases, and what the run charges each budget.
func MakePlan(spec *Spec) (*Plan, error) {
	order, err := spec.Order()
	if err != nil {
		return nil, err
	}
	charges, err := planCharges(context.Background(), order, dataset.URLOptions{}, planBudget)
	if err != nil {
		return nil, err
	}
	p := &Plan{Job: spec.Name, Charges: charges}
	for _, st := range order {
		w := st.work()
		sp := w.plan()
		sp.Step, sp.DependsOn = st.Name, st.DependsOn
		var evs []accountant.Event
		var charge *Charge
		for _, ch := range charges {
			for _, r := range ch.Releases {
				if r.Step == st.Name {
					sp.Releases = append(sp.Releases, fmt.Sprintf("%s: %s (ε %.4g alone at δ %g)", r.What, describeEvent(r.Event), r.Epsilon, ch.Delta))
					evs = append(evs, r.Event)
					charge = ch
				}
			}
		}
		if charge != nil {
			r, err := accountant.Spent(charge.Accountant, charge.Delta, evs...)
			if err != nil {
				return nil, err
			}
			sp.Epsilon = r.Epsilon
			b := charge.Budget
			sp.Budget = fmt.Sprintf("ε %g, δ %g per %s in %s, set by the %s", b.Epsilon, b.Delta, cmpOr(b.Period, "total"), charge.Ledger, charge.SetBy)
		} else if b := w.budget(); b != nil {
			sp.Budget = fmt.Sprintf("ε %g, δ %g per %s in %s", b.Epsilon, b.Delta, cmpOr(b.Period, "total"), b.Ledger)
		}
		p.Steps = append(p.Steps, sp)
	}
	return p, nil
}

// describeEvent says what mechanism an event plans, for people.
func describeEvent(e accountant.Event) string {
	n := ""
	if e.Count > 1 {
		n = fmt.Sprintf("%d × ", e.Count)
	}
	switch e.Mechanism {
	case accountant.SubsampledGaussian:
		if e.SamplingRate >= 1 {
			return fmt.Sprintf("%sGaussian, noise multiplier %.4g", n, e.NoiseMultiplier)
		}
		return fmt.Sprintf("%sPoisson-subsampled Gaussian, q %.4g, noise multiplier %.4g", n, e.SamplingRate, e.NoiseMultiplier)
	case accountant.DiscreteGaussian:
		return fmt.Sprintf("%sdiscrete Gaussian, σ %g, sensitivity %d", n, e.Sigma, e.Sensitivity)
	case accountant.DiscreteLaplace:
		return fmt.Sprintf("%sdiscrete Laplace, scale %g, sensitivity %d", n, e.Scale, e.Sensitivity)
	}
	return n + string(e.Mechanism)
}
