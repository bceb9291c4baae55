package train

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"

	"github.com/veil-privacy/veil/lineage"
)

// Card builds the model card of a training run (Model Card Toolkit schema
// v0.0.2) from its report: the privacy guarantee, the data, the evaluation
// against the baselines and the privacy-utility curve.
func Card(rep *Report) *lineage.ModelCard {
	c := &lineage.ModelCard{SchemaVersion: "0.0.2"}
	private := rep.Guarantee != nil
	kind := "trained without differential privacy"
	if private {
		kind = fmt.Sprintf("trained under subject-level (ε = %.3g, δ = %.2g) differential privacy", rep.Guarantee.Epsilon, rep.Guarantee.Delta)
	}
	c.ModelDetails = lineage.CardDetails{
		Name:     "veil item factors " + rep.LogicalDate,
		Overview: fmt.Sprintf("Product recommendations for the shop: item factors learned from %d customers' interactions with %d products, %s.", rep.Subjects, rep.Items, kind),
		Documentation: "The model gives every product a short list of numbers (its factors) and a popularity bias. " +
			"A customer's own taste vector is never stored or released: it is solved, when recommendations are made, from that customer's own interactions and the released product factors alone. " +
			"Recommendations are the products with the highest scores the customer has not interacted with yet.",
		Owners:  []lineage.CardOwner{{Name: "veil train (run " + rep.RunID + ")"}},
		Version: &lineage.CardVersion{Name: rep.RunID, Date: rep.LogicalDate},
		Path:    rep.Output,
	}
	m := rep.Model
	arch := fmt.Sprintf("Implicit-feedback matrix factorization (Hu, Koren and Volinsky 2008): %d factors per item plus a bias; a customer's factor is the closed-form ridge solution (λ = %g, weight %g on products not interacted with). ",
		m.Dim, m.Lambda, m.Unobserved)
	if private {
		g := rep.Guarantee
		arch += fmt.Sprintf("The item factors are trained with DP-SGD: Poisson sampling of customers at rate q = %.3g, %d steps, each customer's whole gradient clipped to L2 norm %g, Gaussian noise with multiplier σ = %.4g from a cryptographically secure source, %s optimizer (post-processing).",
			g.SamplingRate, g.Steps, g.Clip, g.NoiseMultiplier, m.Optimizer)
	} else {
		arch += fmt.Sprintf("The item factors are trained by %s on sampled customers, with no clipping and no noise.", m.Optimizer)
	}
	c.ModelParameters = lineage.CardParameters{
		ModelArchitecture: arch,
		Data: []lineage.CardDataset{{
			Name: "events", Link: linkOf(rep.Events),
			Description: fmt.Sprintf("Pseudonymized shop events of customers who consented to %s as of %s, within the retention window; %d customers, %d products, %d customer-product interactions (%d rows read, %d kept).",
				strings.Join(rep.Purposes, ", "), rep.LogicalDate, rep.Subjects, rep.Items, rep.Interactions, rep.Filter.RowsRead, rep.Filter.RowsKept) + zoneNote(rep.Filter.Jurisdictions),
			Sensitive: &lineage.CardSensitive{SensitiveData: []string{
				"customer ids are pseudonymous tokens (HMAC-SHA-256), never raw identifiers",
				"browsing and purchase history, which can reveal personal circumstances",
			}},
		}},
		InputFormat:  "a customer's own interactions (product id, weight) and the released item factors",
		OutputFormat: "a ranked list of product ids with scores",
		OutputFormatMap: []lineage.CardKeyVal{
			{Key: FactorsFile, Value: "the released model: item_id, bias, vector"},
			{Key: RecommendationsFile, Value: fmt.Sprintf("top recommendations (subject_id, rank, item_id, score) for the %d customers who allow personalization", rep.Recommended)},
			{Key: MetricsFile, Value: "the full training and evaluation report"},
			{Key: lineage.ContributorsFile, Value: "a Bloom filter of the customers whose data trained the model, to trace erasure requests"},
		},
	}
	metrics := func(slice string, mt Metrics) []lineage.CardMetric {
		f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
		return []lineage.CardMetric{
			{Type: "Recall@10", Value: f(mt.Recall10), Slice: slice}, {Type: "Recall@20", Value: f(mt.Recall20), Slice: slice},
			{Type: "NDCG@10", Value: f(mt.NDCG10), Slice: slice}, {Type: "NDCG@20", Value: f(mt.NDCG20), Slice: slice},
			{Type: "catalog coverage@20", Value: f(mt.Coverage), Slice: slice},
		}
	}
	self := "this model"
	if private {
		self = fmt.Sprintf("this model (ε = %.3g)", rep.Guarantee.Epsilon)
	}
	q := lineage.CardQuantitative{}
	q.PerformanceMetrics = append(q.PerformanceMetrics, metrics(self, rep.Eval.Model)...)
	if rep.Eval.NonPrivate != nil {
		q.PerformanceMetrics = append(q.PerformanceMetrics, metrics("non-private baseline (not released)", *rep.Eval.NonPrivate)...)
	}
	q.PerformanceMetrics = append(q.PerformanceMetrics, metrics("popularity baseline", rep.Eval.Popularity)...)
	for _, pt := range rep.Curve {
		if !math.IsInf(pt.Epsilon, 1) {
			q.PerformanceMetrics = append(q.PerformanceMetrics, metrics(fmt.Sprintf("curve: ε = %g", pt.Epsilon), pt.Metrics)...)
		}
	}
	if e := rep.Exposure; e != nil {
		slice := "exposure of the recommendations"
		q.PerformanceMetrics = append(q.PerformanceMetrics,
			lineage.CardMetric{Type: "catalog coverage", Value: fmt.Sprintf("%.3f", e.Coverage), Slice: slice},
			lineage.CardMetric{Type: "Gini of exposure", Value: fmt.Sprintf("%.3f", e.Gini), Slice: slice},
			lineage.CardMetric{Type: "share to the top 10% items", Value: fmt.Sprintf("%.3f", e.PopularShare), Slice: slice},
			lineage.CardMetric{Type: "their share of interactions", Value: fmt.Sprintf("%.3f", e.PopularInteractionShare), Slice: slice})
	}
	if a := rep.Audit; a != nil {
		slice := "privacy audit (one training run with canaries)"
		proven := "∞"
		if a.ProvenEpsilon != nil {
			proven = fmt.Sprintf("%.4g", *a.ProvenEpsilon)
		}
		q.PerformanceMetrics = append(q.PerformanceMetrics,
			lineage.CardMetric{Type: "proven ε", Value: proven, Slice: slice},
			lineage.CardMetric{Type: fmt.Sprintf("empirical ε lower bound (%.0f%%)", 100*a.Confidence), Value: fmt.Sprintf("%.3g", a.EpsilonLowerBound), Slice: slice},
			lineage.CardMetric{Type: "membership inference AUC", Value: fmt.Sprintf("%.3f", a.MembershipAUC), Slice: slice})
	}
	for _, g := range rep.graphics() {
		if q.Graphics == nil {
			q.Graphics = &lineage.CardGraphics{Description: "The privacy-utility curve shows how recommendation quality (Recall@20) changes with the privacy parameter ε: smaller ε protects customers more and costs accuracy. " +
				"The exposure curve shows how evenly recommendations spread over the products: the further below the diagonal, the more they go to a few."}
		}
		q.Graphics.Collection = append(q.Graphics.Collection, lineage.CardGraphic{Name: g.name, Image: base64.StdEncoding.EncodeToString(g.png)})
	}
	c.QuantitativeAnalysis = q
	cons := lineage.CardConsiderations{
		Users:    []lineage.CardText{{Description: "the shop's recommendation service and its engineers"}, {Description: "data stewards reviewing what the model learned from and what it may reveal"}},
		UseCases: []lineage.CardText{{Description: "recommending products to customers who allow personalization, from their own history"}},
		Limitations: []lineage.CardText{
			{Description: "Quality was measured on " + rep.Eval.Holdout + "; it says how well the model predicts what customers did next, not whether they liked it."},
			{Description: "Customers with few interactions get recommendations close to the most popular products."},
			{Description: "Products are only those seen in the training window; new products get no factors until the next run."},
			{Description: "Exposure is measured over products, not over regions: the personalization purpose may not read the region column (the policy decides)."},
		},
	}
	for _, w := range rep.Warnings {
		cons.Limitations = append(cons.Limitations, lineage.CardText{Description: "Warning: " + w + "."})
	}
	if private {
		g := rep.Guarantee
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
			Name: "Revealing a customer's history through the released model",
			MitigationStrategy: fmt.Sprintf("The released item factors and biases are (ε = %.4g, δ = %.3g)-differentially private with respect to adding or removing all of one customer's interactions (unit: %s), "+
				"accounted with the %s accountant: noise multiplier σ = %.4g, sampling rate q = %.4g, %d steps, clip norm C = %g, at most %d interactions per customer (sampled uniformly). "+
				"Each customer's recommendations use only that customer's own data and the released factors (joint differential privacy). "+
				"The spend is recorded in the budget ledger; evaluation metrics on held-out data and the list of product ids are not differentially private releases.",
				g.Epsilon, g.Delta, g.Unit, g.Accountant, g.NoiseMultiplier, g.SamplingRate, g.Steps, g.Clip, g.MaxInteractions),
		})
		if rep.Eval.NonPrivate != nil && rep.Eval.NonPrivate.Recall20 > 0 {
			cons.Tradeoffs = append(cons.Tradeoffs, lineage.CardText{Description: fmt.Sprintf(
				"Privacy costs accuracy: this model reaches %.0f%% of the Recall@20 of the same model trained without privacy (%.3f against %.3f); popularity alone reaches %.3f.",
				100*rep.Eval.Model.Recall20/rep.Eval.NonPrivate.Recall20, rep.Eval.Model.Recall20, rep.Eval.NonPrivate.Recall20, rep.Eval.Popularity.Recall20)})
		}
	} else {
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
			Name:               "Revealing a customer's history through the released model",
			MitigationStrategy: "None: this model was trained without differential privacy. Do not release it outside the shop's trusted systems.",
		})
	}
	if a := rep.Audit; a != nil {
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
			Name: "Checking the guarantee empirically",
			MitigationStrategy: fmt.Sprintf("A one-run privacy audit (Steinke, Nasr and Jagielski 2023) trained the same model once more with %d made-up canary customers, each included by a coin flip, and guessed %d of them right out of %d: "+
				"with %.0f%% confidence the training is not better than ε = %.3g, which must stay below the proven ε (it does, or this run would have failed). "+
				"A membership-inference attack that compares how well the model fits customers it saw and did not see scores an AUC of %.3f (0.5 is a coin flip).",
				a.Canaries, a.Correct, a.Guesses, 100*a.Confidence, a.EpsilonLowerBound, a.MembershipAUC),
		})
	}
	cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
		Name:               "Using data without permission",
		MitigationStrategy: fmt.Sprintf("Only customers who consented to %s and have not asked for erasure are used; %s lets stewards check whether a customer contributed.", strings.Join(rep.Purposes, ", "), lineage.ContributorsFile),
	})
	c.Considerations = cons
	return c
}

// linkOf returns u when it is a URI the schema accepts, else "".
func linkOf(u string) string {
	if strings.Contains(u, "://") {
		return u
	}
	return ""
}

type graphic struct {
	name, file string
	png        []byte
}

// graphics lists the run's plots in the order the card shows them.
func (rep *Report) graphics() []graphic {
	var gs []graphic
	if rep.CurvePNG != nil {
		gs = append(gs, graphic{"privacy-utility curve", CurvePNGFile, rep.CurvePNG})
	}
	if rep.ExposurePNG != nil {
		gs = append(gs, graphic{"exposure of the recommendations", ExposurePNGFile, rep.ExposurePNG})
	}
	return gs
}

// zoneNote says which jurisdictions a segregated run was limited to.
func zoneNote(jurisdictions []string) string {
	if len(jurisdictions) == 0 {
		return ""
	}
	return fmt.Sprintf(" Only customers whose latest consent record names %s are in it (geographic segregation): the model was trained on them alone.", strings.Join(jurisdictions, " or "))
}
