package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/veil-privacy/veil/train/mf"
)

// Experiment is a training run on a split and its evaluation: the model,
// its metrics against the baselines and, on request, the privacy-utility
// curve.
type Experiment struct {
	Model    *mf.Model
	Stats    *mf.Stats
	Eval     Eval
	Curve    []CurvePoint
	CurvePNG []byte
	Timings  Timings
}

// Timings are the wall seconds of a training job's phases (the steward
// report's seconds_by_phase): where a run's time goes.
type Timings struct {
	Load      float64 `json:"load"`                 // reading the consented interactions
	Train     float64 `json:"train"`                // the released model
	Evaluate  float64 `json:"evaluate"`             // it and popularity, on the holdout
	Baseline  float64 `json:"non_private_train"`    // the non-private baseline's training
	BaseEval  float64 `json:"non_private_evaluate"` // and its evaluation
	Curve     float64 `json:"curve,omitempty"`      // every curve point, trained and evaluated
	Recommend float64 `json:"recommend"`            // every subject's recommendations and their exposure
}

// BaselineConfig is cfg without privacy, with ev's optimizer settings for
// the non-private baseline where it sets them.
func BaselineConfig(cfg mf.Config, ev Evaluation) mf.Config {
	c := cfg
	c.Epsilon = math.Inf(1)
	if ev.BaselineEpochs > 0 {
		c.Epochs = ev.BaselineEpochs
	}
	if ev.BaselineSamplingRate > 0 {
		c.SamplingRate = ev.BaselineSamplingRate
	}
	if ev.BaselineLearningRate > 0 {
		c.LearningRate = ev.BaselineLearningRate
	}
	return c
}

// RunExperiment trains cfg on train with plan, evaluates it on test against
// popularity and (for a private cfg with ev.Baselines or ev.Curve) the same
// model without privacy, and trains one more model per curve plan. Every
// private plan must have been spent in the budget ledger before this call.
func RunExperiment(ctx context.Context, train *mf.Data, test [][]int32, cfg mf.Config, plan mf.Plan, ev Evaluation, curve []mf.Plan, opt mf.FitOptions, workers int) (*Experiment, error) {
	x := &Experiment{Eval: Eval{Holdout: holdoutText(ev)}}
	var err error
	t0 := time.Now()
	since := func() float64 { t := time.Now(); s := t.Sub(t0).Seconds(); t0 = t; return s }
	if x.Model, x.Stats, err = mf.Fit(ctx, train, cfg, plan, opt); err != nil {
		return nil, err
	}
	x.Timings.Train = since()
	if x.Eval.Model, err = mf.Evaluate(train, test, mf.ModelRanker(x.Model, train.Items), workers); err != nil {
		return nil, err
	}
	if x.Eval.Popularity, err = mf.Evaluate(train, test, mf.PopularityRanker(train), workers); err != nil {
		return nil, err
	}
	x.Timings.Evaluate = since()
	logTime(opt.Log, "evaluated the model and popularity", x.Timings.Evaluate)
	fitEval := func(c mf.Config, p mf.Plan) (mf.Metrics, float64, float64, error) {
		t := time.Now()
		m, _, err := mf.Fit(ctx, train, c, p, mf.FitOptions{Log: opt.Log})
		if err != nil {
			return mf.Metrics{}, 0, 0, err
		}
		fit := time.Since(t).Seconds()
		met, err := mf.Evaluate(train, test, mf.ModelRanker(m, train.Items), workers)
		return met, fit, time.Since(t).Seconds() - fit, err
	}
	if cfg.Private() && (ev.Baselines || len(curve) > 0) {
		c := BaselineConfig(cfg, ev)
		p, err := c.MakePlan()
		if err != nil {
			return nil, fmt.Errorf("non-private baseline: %w", err)
		}
		met, fit, eval, err := fitEval(c, p)
		if err != nil {
			return nil, fmt.Errorf("non-private baseline: %w", err)
		}
		x.Eval.NonPrivate = &met
		x.Timings.Baseline, x.Timings.BaseEval = fit, eval
		logTime(opt.Log, "trained and evaluated the non-private baseline", fit+eval, "train_seconds", fit, "epochs", c.Epochs, "sampling_rate", c.SamplingRate, "learning_rate", c.LearningRate)
	}
	if len(curve) == 0 {
		return x, nil
	}
	for _, p := range curve {
		c := cfg
		c.Epsilon = p.Target()
		met, fit, eval, err := fitEval(c, p)
		if errors.Is(err, mf.ErrNoItemSelected) {
			// A DP outcome, not a failure: at this ε no item's noisy
			// count passed the threshold, so that model would release
			// no item and recommend nothing.
			x.Curve = append(x.Curve, CurvePoint{Epsilon: p.Target(), Note: "no item passed DP partition selection: the model would recommend nothing"})
			if opt.Log != nil {
				opt.Log.Info("curve point", "epsilon", p.Target(), "note", "no item passed DP partition selection")
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("curve point ε %v: %w", p.Target(), err)
		}
		x.Timings.Curve += fit + eval
		x.Curve = append(x.Curve, CurvePoint{Epsilon: p.Target(), Metrics: met})
		if opt.Log != nil {
			// The point's metrics are an evaluation on the private
			// holdout: steward only, never in a log.
			opt.Log.Info("curve point trained", "epsilon", p.Target())
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

// logTime logs how long a phase took, at info level.
func logTime(log *slog.Logger, what string, seconds float64, args ...any) {
	if log != nil {
		log.Info(what, append([]any{"seconds", math.Round(seconds*1000) / 1000}, args...)...)
	}
}
