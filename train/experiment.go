package train

import (
	"context"
	"fmt"
	"math"
)

// Experiment is a training run on a split and its evaluation: the model,
// its metrics against the baselines and, on request, the privacy-utility
// curve.
type Experiment struct {
	Model    *Model
	Stats    *Stats
	Eval     Eval
	Curve    []CurvePoint
	CurvePNG []byte
}

// RunExperiment trains cfg on train with plan, evaluates it on test against
// popularity and (for a private cfg with ev.Baselines or ev.Curve) the same
// model without privacy, and trains one more model per curve plan. Every
// private plan must have been spent in the budget ledger before this call.
func RunExperiment(ctx context.Context, train *Data, test [][]int32, cfg Config, plan Plan, ev Evaluation, curve []Plan, opt FitOptions, workers int) (*Experiment, error) {
	x := &Experiment{Eval: Eval{Holdout: holdoutText(ev)}}
	var err error
	if x.Model, x.Stats, err = Fit(ctx, train, cfg, plan, opt); err != nil {
		return nil, err
	}
	if x.Eval.Model, err = Evaluate(train, test, ModelRanker(x.Model, train.Items), workers); err != nil {
		return nil, err
	}
	if x.Eval.Popularity, err = Evaluate(train, test, PopularityRanker(train), workers); err != nil {
		return nil, err
	}
	fitEval := func(c Config, p Plan) (Metrics, error) {
		m, _, err := Fit(ctx, train, c, p, FitOptions{Log: opt.Log})
		if err != nil {
			return Metrics{}, err
		}
		return Evaluate(train, test, ModelRanker(m, train.Items), workers)
	}
	if cfg.Private() && (ev.Baselines || len(curve) > 0) {
		c := cfg
		c.Epsilon = math.Inf(1)
		if ev.BaselineEpochs > 0 {
			c.Epochs = ev.BaselineEpochs
		}
		p, _ := c.MakePlan()
		met, err := fitEval(c, p)
		if err != nil {
			return nil, fmt.Errorf("non-private baseline: %w", err)
		}
		x.Eval.NonPrivate = &met
	}
	if len(curve) == 0 {
		return x, nil
	}
	for _, p := range curve {
		c := cfg
		c.Epsilon = p.target
		met, err := fitEval(c, p)
		if err != nil {
			return nil, fmt.Errorf("curve point ε %v: %w", p.target, err)
		}
		x.Curve = append(x.Curve, CurvePoint{Epsilon: p.target, Metrics: met})
		if opt.Log != nil {
			// The point's metrics are an evaluation on the private
			// holdout: steward only, never in a log.
			opt.Log.Info("curve point trained", "epsilon", p.target)
		}
	}
	np := x.Eval.NonPrivate
	if np == nil {
		np = &x.Eval.Model
	}
	x.Curve = append(x.Curve, CurvePoint{Epsilon: math.Inf(1), Metrics: *np})
	if x.CurvePNG, err = PlotCurve(x.Curve, x.Eval.Popularity.Recall20); err != nil {
		return nil, err
	}
	return x, nil
}

// CurvePlans plans one private run per target ε, with cfg's other settings.
func CurvePlans(cfg Config, epsilons []float64) ([]Plan, error) {
	var plans []Plan
	for _, eps := range epsilons {
		c := cfg
		c.Epsilon = eps
		p, err := c.MakePlan()
		if err != nil {
			return nil, fmt.Errorf("curve point ε %v: %w", eps, err)
		}
		p.target = eps
		plans = append(plans, p)
	}
	return plans, nil
}
