package train

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/train/mf"
)

// NonPersonalizedFile is the non-profiled list of a run's release (when
// the job sets non_personalized): the same products, in the same order,
// for every customer, for those who do not allow personalization.
const NonPersonalizedFile = "nonpersonalized.parquet"

// NonPersonalizedLabel labels every row of NonPersonalizedFile.
const NonPersonalizedLabel = "non-personalized: the most popular products (differentially private counts), the same for every customer, not based on profiling"

// trainColumns are the event columns a training run reads: the subject,
// the time (only to keep events inside the window and order the holdout),
// the event type (its weight) and the product.
var trainColumns = []string{"subject_id", "event_time", "event_type", "item_id"}

// nonPersonalized ranks the model's items by the popularity prior (the
// released DP item-count histogram, a monotone function of its noisy
// count; ties by item id) and returns the k first. It reads nothing about
// any subject, so the list is the same for everyone, and it spends no
// budget beyond the histogram the plan already charged.
func nonPersonalized(items []string, popularity []float64, k int) []dataset.NonPersonalized {
	order := make([]int, len(items))
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(popularity[b], popularity[a]), cmp.Compare(items[a], items[b]))
	})
	order = order[:min(k, len(order))]
	out := make([]dataset.NonPersonalized, len(order))
	for r, j := range order {
		out[r] = dataset.NonPersonalized{Rank: int64(r + 1), ItemID: items[j], Score: popularity[j], List: NonPersonalizedLabel}
	}
	return out
}

// excludedColumns returns the event columns that personalization may not
// read under the policy, and the other event columns training never reads.
func excludedColumns(pol *privacy.Policy) (byPolicy, unused []string) {
	if pol == nil {
		pol = privacy.DefaultPolicy()
	}
	allowed := pol.AllowedColumns(Purposes)
	for _, c := range dataset.EventsContract.Columns {
		switch {
		case !slices.Contains(allowed, c.Name):
			byPolicy = append(byPolicy, c.Name)
		case !slices.Contains(trainColumns, c.Name):
			unused = append(unused, c.Name)
		}
	}
	return byPolicy, unused
}

// columnWords names event columns for a reader who is not an engineer.
var columnWords = map[string]string{
	"value": "the money spent (value)", "quantity": "quantities (quantity)", "category": "product categories (category)",
	"region": "where the customer is (region)", "event_time": "when events happened (event_time)", "event_type": "event types (event_type)",
	"item_id": "products (item_id)", "subject_id": "the customer's token (subject_id)",
}

// inWords lists event columns in words: "a, b or c".
func inWords(cols []string) string {
	words := make([]string, len(cols))
	for i, c := range cols {
		words[i] = cmp.Or(columnWords[c], c)
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// mainParameters states the main parameters of the recommender system in
// plain words (EU Digital Services Act, Article 27): what it uses, what it
// never uses, how it weighs them, why a product is recommended and what a
// customer can do. It depends on the settings and the policy only.
func mainParameters(rep *Report) []lineage.CardRisk {
	cfg := rep.config
	ic := cfg.Interactions
	if ic.EventWeights == nil {
		ic = DefaultInteractions()
	}
	var weights []string
	for _, t := range slices.Sorted(maps.Keys(ic.EventWeights)) {
		weights = append(weights, fmt.Sprintf("%s %g", t, ic.EventWeights[t]))
	}
	never := "the money spent (value), quantities, product categories or where the customer is (region)"
	if len(rep.excludedByPolicy)+len(rep.unusedColumns) > 0 {
		never = inWords(append(slices.Clone(rep.excludedByPolicy), rep.unusedColumns...))
	}
	policy := ""
	if len(rep.excludedByPolicy) > 0 {
		policy = fmt.Sprintf(" The privacy policy forbids personalization to read %s at all.", inWords(rep.excludedByPolicy))
	}
	maxRows := cfg.Model.MaxInteractions
	if maxRows == 0 {
		maxRows = mf.DefaultConfig().MaxInteractions
	}
	can := "withdraw consent to personalization at any time: from the next run on, the customer's data no longer trains the model and the customer gets no personalized recommendations"
	if cfg.NonPersonalized {
		can += "; customers without that consent are shown a list that is not based on profiling, the most popular products, the same for everyone (" + NonPersonalizedFile + ")"
	}
	can += "; ask the shop for a report of what is held about them (veil subject report), or for erasure."
	return []lineage.CardRisk{
		{Name: "Main parameters: signals used (DSA Art. 27)",
			MitigationStrategy: fmt.Sprintf("Which products a customer interacted with, as shop events of the types %s, from the last %d days before the run, "+
				"only of customers who consented to personalization and did not ask for erasure.", strings.Join(slices.Sorted(maps.Keys(ic.EventWeights)), ", "), ic.WindowDays)},
		{Name: "Main parameters: signals never used",
			MitigationStrategy: fmt.Sprintf("Recommendations never use %s, nor any other event type than those above, nor any data of a customer who did not consent.%s "+
				"Where a customer lives is never used to personalize.", never, policy)},
		{Name: "Main parameters: how signals are weighted",
			MitigationStrategy: fmt.Sprintf("Each event counts with the weight of its type (%s); a customer's events on the same product add up. "+
				"At most %d products per customer train the model. Products a customer did not touch count a little (weight %g) as not chosen. "+
				"A product's score is how well it matches the taste drawn from the customer's own products, plus how popular it is overall.",
				strings.Join(weights, ", "), maxRows, cmp.Or(cfg.Model.Unobserved, mf.DefaultConfig().Unobserved))},
		{Name: "Why each recommendation",
			MitigationStrategy: fmt.Sprintf("Each recommendation names up to %d products of the customer's own history that raised its score most, with their shares (because_items, because_shares in %s). "+
				"The score splits exactly into one part per product the customer interacted with and a part from the products' popularity (Hu, Koren and Volinsky 2008); a recommendation that names no product is there for its popularity, not for the customer's history. "+
				"The reasons use only that customer's own data and the released product factors, like the recommendations themselves, so the differential privacy of the factors (joint DP) is kept for every other customer. "+
				"That is also why %[2]s is personal data and no public release: each customer's rows, reasons included, name products of that customer's own history and may be shown to that customer only.",
				BecauseItems, RecommendationsFile)},
		{Name: "What a customer can do", MitigationStrategy: "A customer can " + can},
	}
}
