package train

import (
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/train/mf"
)

// Releases lists the DP releases the job plans, as accountant events, and
// the accountant that composes them: the model, one more model per curve
// point, the audit's training run. It reads no data. No events: the job
// releases nothing under DP.
func (c JobConfig) Releases() ([]accountant.Event, string, error) {
	if err := c.Validate(); err != nil {
		return nil, "", err
	}
	// A named catalog fixes the items: the plan has no partition
	// selection, as in Run, which reads the catalog before planning.
	model := c.Model
	if c.Catalog != "" {
		model = model.NamedCatalog()
	}
	plan, err := model.MakePlan()
	if err != nil {
		return nil, "", err
	}
	var curve []mf.Plan
	if c.Evaluation.Curve {
		if curve, err = mf.CurvePlans(model, c.Evaluation.CurveEpsilons); err != nil {
			return nil, "", err
		}
	}
	return releases(c, plan, curve), c.Model.Accountant, nil
}
