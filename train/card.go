package train

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

// Card builds the public model card of a training run (Model Card Toolkit
// schema v0.0.2), the one in the release. In a DP run it holds what is DP
// or public by declaration only (DESIGN.md, "What leaves veil"): the
// model's own guarantee, the ledger's charge for the run and its breakdown
// by release, the plan, the settings and the intended use; no count of
// subjects, items or interactions, no diagnostic and no evaluation on
// private data (those are in the steward report, StewardCard). Its content
// depends on the settings only, not on any one subject. A non-private run
// keeps its evaluation and says plainly that nothing in it is protected.
func Card(rep *Report) *lineage.ModelCard {
	c := &lineage.ModelCard{SchemaVersion: "0.0.2"}
	private := rep.Guarantee != nil
	kind := "trained WITHOUT differential privacy: nothing in this card or the model protects the customers whose data trained it"
	if private {
		kind = fmt.Sprintf("trained under subject-level (ε = %.4g, δ = %.3g) differential privacy", rep.Guarantee.Epsilon, rep.Guarantee.Delta)
	}
	c.ModelDetails = details(rep, "", fmt.Sprintf("Product recommendations for the shop: item factors learned from customers' interactions with products, %s. "+
		"Exact counts, training diagnostics and the evaluation on held-out customers are in the steward report, which only the data steward reads.", kind))
	c.ModelParameters = parameters(rep, fmt.Sprintf("Pseudonymized shop events of customers who consented to %s as of %s, within the retention window%s.",
		strings.Join(rep.Purposes, ", "), rep.LogicalDate, rep.interactionsText())+zoneNote(rep.jurisdictions()))
	c.ModelParameters.OutputFormatMap = []lineage.CardKeyVal{
		{Key: FactorsFile, Value: "the released model: item_id, bias, vector"},
		{Key: RecommendationsFile, Value: "top recommendations (subject_id, rank, item_id, score, and why: because_items, because_shares) of each customer who allows personalization, from that customer's own data and the released factors"},
		{Key: "steward report", Value: "exact counts, filter drops, training diagnostics, evaluation on held-out customers, the privacy audit's result and the contributors filter: in the state store, for the data steward only, never in this release"},
	}
	if rep.config.NonPersonalized {
		c.ModelParameters.OutputFormatMap = append(c.ModelParameters.OutputFormatMap, lineage.CardKeyVal{Key: NonPersonalizedFile,
			Value: "the list for customers who do not allow personalization (rank, item_id, score, list): the most popular products by the run's differentially private item counts, the same for everyone, at no further privacy cost"})
	}
	q := lineage.CardQuantitative{}
	q.PerformanceMetrics = append(q.PerformanceMetrics, rep.privacyMetrics()...)
	if !private {
		q.PerformanceMetrics = append(q.PerformanceMetrics, rep.evalMetrics()...)
	}
	c.QuantitativeAnalysis = q
	cons := lineage.CardConsiderations{
		Users:    []lineage.CardText{{Description: "the shop's recommendation service and its engineers"}, {Description: "data stewards reviewing what the model learned from and what it may reveal"}},
		UseCases: []lineage.CardText{{Description: "recommending products to customers who allow personalization, from their own history"}},
		Limitations: []lineage.CardText{
			{Description: "Customers with few interactions get recommendations close to the most popular products."},
			{Description: rep.itemsText() + " New products get factors at the next run."},
		},
	}
	if private {
		cons.Limitations = append(cons.Limitations, lineage.CardText{Description: "How well the model predicts held-out interactions was measured on private data and is not a differentially private release: it is in the steward report, not here."})
	} else {
		cons.Limitations = append(cons.Limitations, lineage.CardText{Description: "Quality was measured on " + rep.Eval.Holdout + "; it says how well the model predicts what customers did next, not whether they liked it."})
	}
	cons.EthicalConsiderations = append(cons.EthicalConsiderations, rep.guaranteeRisk())
	if ch := rep.Charged; ch != nil {
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
			Name: "What this run cost in privacy budget",
			MitigationStrategy: fmt.Sprintf("The budget ledger charged this run ε = %s at δ = %s (%s accountant, dataset %s, period %s): every DP release of the run composed. %s "+
				"This charge is what the run spent of the budget; the model's own guarantee above covers the released factors alone.",
				full(ch.Epsilon), full(ch.Delta), ch.Accountant, ch.Dataset, ch.Period, chargeParts(ch)),
		})
	}
	if a := rep.config.Evaluation.PrivacyAudit; a != nil && private {
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
			Name: "Checking the guarantee empirically",
			MitigationStrategy: fmt.Sprintf("A one-run privacy audit (Steinke, Nasr and Jagielski 2023) trained the same model once more with %d made-up canary customers at %.0f%% confidence; the run fails if the audit's lower bound exceeds the proven ε. "+
				"Its result is in the steward report.", a.Canaries, 100*a.Confidence),
		})
	}
	if a := rep.config.Evaluation.WhiteBoxAudit; a != nil && private {
		cons.EthicalConsiderations = append(cons.EthicalConsiderations, whiteBoxRisk(a.Canaries, a.Confidence, a.FalseAlarm))
	}
	cons.EthicalConsiderations = append(cons.EthicalConsiderations, lineage.CardRisk{
		Name:               "Using data without permission",
		MitigationStrategy: fmt.Sprintf("Only customers who consented to %s and have not asked for erasure are used; a filter of the customers who contributed, in the steward report, lets stewards answer erasure requests.", strings.Join(rep.Purposes, ", ")),
	})
	cons.EthicalConsiderations = append(cons.EthicalConsiderations, mainParameters(rep)...)
	c.Considerations = cons
	return c
}

// StewardCard builds the steward appendix of a run's model card: what the
// public card leaves out (exact counts, filter drops by reason, training
// diagnostics, evaluation against the baselines and the privacy-utility
// curve, exposure, the privacy audit's result, warnings), for the data
// steward only. It is written to the steward report, never to a release.
func StewardCard(rep *Report) *lineage.ModelCard {
	c := &lineage.ModelCard{SchemaVersion: "0.0.2"}
	c.ModelDetails = details(rep, ": steward appendix", fmt.Sprintf("For the data steward only: exact figures of the training run behind the public model card of %s. "+
		"None of them is differentially private; do not copy them into a release.", rep.Output))
	c.ModelParameters = parameters(rep, fmt.Sprintf("Pseudonymized shop events of customers who consented to %s as of %s, within the retention window; %d customers, %d products, %d customer-product interactions (%d rows read, %d kept%s).",
		strings.Join(rep.Purposes, ", "), rep.LogicalDate, rep.Subjects, rep.Items, rep.Interactions, rep.Filter.RowsRead, rep.Filter.RowsKept, dropText(rep.Filter.RowsDropped))+zoneNote(rep.jurisdictions()))
	c.ModelParameters.OutputFormatMap = []lineage.CardKeyVal{
		{Key: StewardReportFile, Value: "the full training and evaluation report"},
		{Key: lineage.ContributorsFile, Value: "a Bloom filter of the customers whose data trained the model, to trace erasure requests"},
		{Key: RecommendationsFile + " (release)", Value: fmt.Sprintf("for %d customers who allow personalization (not recommended: %s)", rep.Recommended, countsText(rep.NotRecommended))},
	}
	q := lineage.CardQuantitative{}
	q.PerformanceMetrics = append(q.PerformanceMetrics, rep.privacyMetrics()...)
	counts := "exact counts (not DP)"
	q.PerformanceMetrics = append(q.PerformanceMetrics,
		lineage.CardMetric{Type: "customers", Value: strconv.Itoa(rep.Subjects), Slice: counts},
		lineage.CardMetric{Type: "products", Value: strconv.Itoa(rep.Items), Slice: counts},
		lineage.CardMetric{Type: "interactions", Value: strconv.Itoa(rep.Interactions), Slice: counts},
		lineage.CardMetric{Type: "customers recommended", Value: strconv.Itoa(rep.Recommended), Slice: counts})
	if s := rep.Training; s != nil {
		diag := "training diagnostics (not DP)"
		q.PerformanceMetrics = append(q.PerformanceMetrics,
			lineage.CardMetric{Type: "steps done", Value: strconv.Itoa(s.StepsDone), Slice: diag},
			lineage.CardMetric{Type: "customers sampled down", Value: strconv.Itoa(s.Bounded), Slice: diag},
			lineage.CardMetric{Type: "share of gradients clipped", Value: fmt.Sprintf("%.3f", s.ClippedShare), Slice: diag},
			lineage.CardMetric{Type: "mean gradient norm before clipping", Value: fmt.Sprintf("%.4g", s.MeanNorm), Slice: diag})
	}
	q.PerformanceMetrics = append(q.PerformanceMetrics, rep.evalMetrics()...)
	for _, pt := range rep.Curve {
		switch {
		case pt.Note != "":
			q.PerformanceMetrics = append(q.PerformanceMetrics, lineage.CardMetric{Type: "no model", Value: pt.Note, Slice: fmt.Sprintf("curve: ε = %g", pt.Epsilon)})
		case !math.IsInf(pt.Epsilon, 1):
			q.PerformanceMetrics = append(q.PerformanceMetrics, metricsOf(fmt.Sprintf("curve: ε = %g", pt.Epsilon), pt.Metrics)...)
		}
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
	if a := rep.WhiteBox; a != nil {
		slice := "white-box privacy audit (" + a.Method + ")"
		q.PerformanceMetrics = append(q.PerformanceMetrics,
			lineage.CardMetric{Type: "proven ε", Value: fmt.Sprintf("%.4g", a.ProvenEpsilon), Slice: slice},
			lineage.CardMetric{Type: fmt.Sprintf("empirical ε lower bound (%.0f%%, δ %g)", 100*a.Confidence, a.Delta), Value: fmt.Sprintf("%.4g", a.EpsilonLowerBound), Slice: slice})
		for _, e := range a.Estimates {
			q.PerformanceMetrics = append(q.PerformanceMetrics, lineage.CardMetric{Type: e.Name, Value: fmt.Sprintf("%.5g [%.5g, %.5g], plan %.5g", e.Value, e.Lo, e.Hi, e.Plan), Slice: slice})
		}
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
		Limitations: []lineage.CardText{
			{Description: "Quality was measured on " + rep.Eval.Holdout + "; it says how well the model predicts what customers did next, not whether they liked it."},
			{Description: "Exposure is measured over products, not over regions: the personalization purpose may not read the region column (the policy decides)."},
		},
	}
	for _, w := range rep.Warnings {
		cons.Limitations = append(cons.Limitations, lineage.CardText{Description: "Warning: " + w + "."})
	}
	if rep.Guarantee != nil && rep.Eval.NonPrivate != nil && rep.Eval.NonPrivate.Recall20 > 0 {
		cons.Tradeoffs = append(cons.Tradeoffs, lineage.CardText{Description: fmt.Sprintf(
			"Privacy costs accuracy: this model reaches %.0f%% of the Recall@20 of the same model trained without privacy (%.3f against %.3f); popularity alone reaches %.3f.",
			100*rep.Eval.Model.Recall20/rep.Eval.NonPrivate.Recall20, rep.Eval.Model.Recall20, rep.Eval.NonPrivate.Recall20, rep.Eval.Popularity.Recall20)})
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
	c.Considerations = cons
	return c
}

// details is the model_details section both cards share.
func details(rep *Report, suffix, overview string) lineage.CardDetails {
	return lineage.CardDetails{
		Name:     "veil item factors " + rep.LogicalDate + suffix,
		Overview: overview,
		Documentation: "The model gives every product a short list of numbers (its factors) and a popularity bias. " +
			"A customer's own taste vector is never stored or released: it is solved, when recommendations are made, from that customer's own interactions and the released product factors alone. " +
			"Recommendations are the products with the highest scores the customer has not interacted with yet.",
		Owners:  []lineage.CardOwner{{Name: "veil train (run " + rep.RunID + ")"}},
		Version: &lineage.CardVersion{Name: rep.RunID, Date: rep.LogicalDate},
		Path:    rep.Output,
	}
}

// parameters is the model_parameters section: the architecture and the
// plan (settings only) and the training data as described.
func parameters(rep *Report, data string) lineage.CardParameters {
	m := rep.Model
	arch := fmt.Sprintf("Implicit-feedback matrix factorization (Hu, Koren and Volinsky 2008): %d factors per item plus a bias; a customer's factor is the closed-form ridge solution (λ = %g, weight %g on products not interacted with). ",
		m.Dim, m.Lambda, m.Unobserved)
	if g := rep.Guarantee; g != nil {
		arch += fmt.Sprintf("The item factors are trained with DP-SGD: Poisson sampling of customers at rate q = %.3g, %d steps, at most %d interactions per customer (sampled uniformly), each customer's whole gradient clipped to L2 norm %g, Gaussian noise with multiplier σ = %.4g from a cryptographically secure source, %s optimizer (post-processing). "+
			"What the optimizer learned is then shrunk back toward the popularity prior (the DP item counts), band by band of items of similar counts, to the share of the released updates that their known noise does not explain (post-processing).",
			g.SamplingRate, g.Steps, g.MaxInteractions, g.Clip, g.NoiseMultiplier, m.Optimizer)
	} else {
		arch += fmt.Sprintf("The item factors are trained by %s on sampled customers, with no clipping and no noise.", m.Optimizer)
	}
	return lineage.CardParameters{
		ModelArchitecture: arch,
		Data: []lineage.CardDataset{{
			Name: "events", Link: linkOf(rep.Events), Description: data,
			Sensitive: &lineage.CardSensitive{SensitiveData: []string{
				"customer ids are pseudonymous tokens (HMAC-SHA-256), never raw identifiers",
				"browsing and purchase history, which can reveal personal circumstances",
			}},
		}},
		InputFormat:  "a customer's own interactions (product id, weight) and the released item factors",
		OutputFormat: "a ranked list of product ids with scores",
	}
}

// privacyMetrics are the DP figures of a run, to the last digit: the
// model's own guarantee, the ledger's charge for the run and each release
// of the run alone at the charge's δ.
func (rep *Report) privacyMetrics() []lineage.CardMetric {
	var ms []lineage.CardMetric
	if g := rep.Guarantee; g != nil {
		slice := "this model's own guarantee"
		ms = append(ms, lineage.CardMetric{Type: "ε", Value: full(g.Epsilon), Slice: slice}, lineage.CardMetric{Type: "δ", Value: full(g.Delta), Slice: slice})
	}
	if ch := rep.Charged; ch != nil {
		slice := fmt.Sprintf("budget charged for this run (%s, period %s)", ch.Dataset, ch.Period)
		ms = append(ms, lineage.CardMetric{Type: "ε", Value: full(ch.Epsilon), Slice: slice}, lineage.CardMetric{Type: "δ", Value: full(ch.Delta), Slice: slice})
		for _, r := range ch.Releases {
			ms = append(ms, lineage.CardMetric{Type: "ε", Value: full(r.Epsilon), Slice: "release: " + r.Release})
		}
	}
	return ms
}

// evalMetrics are the evaluation of the model against its baselines.
func (rep *Report) evalMetrics() []lineage.CardMetric {
	self := "this model"
	if rep.Guarantee != nil {
		self = fmt.Sprintf("this model (ε = %.3g)", rep.Guarantee.Epsilon)
	}
	ms := metricsOf(self, rep.Eval.Model)
	if rep.Eval.NonPrivate != nil {
		ms = append(ms, metricsOf("non-private baseline (not released)", *rep.Eval.NonPrivate)...)
	}
	ms = append(ms, metricsOf("popularity baseline", rep.Eval.Popularity)...)
	if e := rep.Exposure; e != nil {
		slice := "exposure of the recommendations"
		ms = append(ms,
			lineage.CardMetric{Type: "catalog coverage", Value: fmt.Sprintf("%.3f", e.Coverage), Slice: slice},
			lineage.CardMetric{Type: "Gini of exposure", Value: fmt.Sprintf("%.3f", e.Gini), Slice: slice},
			lineage.CardMetric{Type: "share to the top 10% items", Value: fmt.Sprintf("%.3f", e.PopularShare), Slice: slice},
			lineage.CardMetric{Type: "their share of interactions", Value: fmt.Sprintf("%.3f", e.PopularInteractionShare), Slice: slice})
	}
	return ms
}

func metricsOf(slice string, mt mf.Metrics) []lineage.CardMetric {
	f := func(v float64) string { return fmt.Sprintf("%.3f", v) }
	return []lineage.CardMetric{
		{Type: "Recall@10", Value: f(mt.Recall10), Slice: slice}, {Type: "Recall@20", Value: f(mt.Recall20), Slice: slice},
		{Type: "NDCG@10", Value: f(mt.NDCG10), Slice: slice}, {Type: "NDCG@20", Value: f(mt.NDCG20), Slice: slice},
		{Type: "catalog coverage@20", Value: f(mt.Coverage), Slice: slice},
	}
}

// guaranteeRisk states the model's own guarantee, or its absence.
func (rep *Report) guaranteeRisk() lineage.CardRisk {
	g := rep.Guarantee
	if g == nil {
		return lineage.CardRisk{
			Name:               "Revealing a customer's history through the released model",
			MitigationStrategy: "None: this model was trained WITHOUT differential privacy, and its evaluation above was measured on private data. Do not release it outside the shop's trusted systems.",
		}
	}
	return lineage.CardRisk{
		Name: "Revealing a customer's history through the released model",
		MitigationStrategy: fmt.Sprintf("The model's own guarantee: the released item factors and biases are (ε = %s, δ = %s)-differentially private with respect to adding or removing all of one customer's interactions (unit: %s), "+
			"accounted with the %s accountant: noise multiplier σ = %.4g, sampling rate q = %.4g, %d steps, clip norm C = %g, at most %d interactions per customer (sampled uniformly). "+
			"Each customer's recommendations use only that customer's own data and the released factors (joint differential privacy). "+
			"%s",
			full(g.Epsilon), full(g.Delta), g.Unit, g.Accountant, g.NoiseMultiplier, g.SamplingRate, g.Steps, g.Clip, g.MaxInteractions, rep.itemsText()),
	}
}

// itemsText says where the released product ids come from.
func (rep *Report) itemsText() string {
	switch {
	case rep.config.Catalog != "":
		return "The product ids are the shop's public catalog, not derived from customers' data."
	case rep.Model.Private():
		return "The product ids were chosen by DP partition selection: a product is released only if its noisy count of customers (each counting for a bounded number of products) clears a threshold, so a product only one customer holds is released with probability at most the selection δ in the ledger's charge."
	}
	return "The product ids are the products seen in the training window."
}

// chargeParts says what each release of the run cost alone.
func chargeParts(ch *release.Charge) string {
	if len(ch.Releases) == 0 {
		return ""
	}
	parts := make([]string, len(ch.Releases))
	for i, r := range ch.Releases {
		parts[i] = fmt.Sprintf("%s: ε = %s", r.Release, full(r.Epsilon))
	}
	return fmt.Sprintf("Each release alone, at the same δ: %s (composed, they cost less than their sum).", strings.Join(parts, "; "))
}

// full writes a privacy figure to the last digit, as the ledger holds it.
func full(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// interactionsText states the interaction settings (public by declaration).
func (rep *Report) interactionsText() string {
	ic := rep.config.Interactions
	if len(ic.EventWeights) == 0 {
		return ""
	}
	types := make([]string, 0, len(ic.EventWeights))
	for t, w := range ic.EventWeights {
		types = append(types, fmt.Sprintf("%s %g", t, w))
	}
	slices.Sort(types)
	return fmt.Sprintf(" (the last %d days; event weights %s)", ic.WindowDays, strings.Join(types, ", "))
}

// jurisdictions are the jurisdictions the run was limited to (settings).
func (rep *Report) jurisdictions() []string {
	if j := rep.config.Jurisdictions; len(j) > 0 {
		return j
	}
	return rep.Filter.Jurisdictions
}

func dropText(dropped map[string]int64) string {
	var parts []string
	for reason, n := range dropped {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return ""
	}
	return "; dropped: " + strings.Join(parts, ", ")
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
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

// whiteBoxRisk describes the white-box audit on the public card: its
// method and what a pass means; its figures are in the steward report.
func whiteBoxRisk(canaries int, confidence, falseAlarm float64) lineage.CardRisk {
	return lineage.CardRisk{
		Name: "Checking that the code does what the accountant assumes",
		MitigationStrategy: fmt.Sprintf("A white-box privacy audit (Nasr et al. 2023) trained the same model once more with %d canary customers whose gradient points along a product no one bought, "+
			"saw every step's noisy update, and estimated the noise, the sampling rate and the clipped contribution of one customer with confidence intervals; "+
			"the run fails if any of them is off the privacy plan (false alarms at most %g), and the ε of the least private parameters in the %.0f%% confidence region, a lower bound on the code's ε, is in the steward report beside the proven ε.",
			canaries, falseAlarm, 100*confidence),
	}
}
