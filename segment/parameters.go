package segment

import (
	"slices"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// mainParameters writes the datasheet's section on the main parameters of
// the cohorts, in plain words (the transparency the EU Digital Services
// Act, Article 27, asks of recommender systems, and Articles 13-15 GDPR of
// profiling): which signals place a customer in a cohort, which are never
// used, how they are weighed, and what a customer can do. It depends on
// the settings and the policy only.
func mainParameters(p func(string, ...any), cfg Config, pol *privacy.Policy, build, export []string, retentionDays int) {
	p("## Main parameters\n\n")
	p("**Signals used.** For each customer who consented to %s: the shop events of the last %d days (the retention of the purposes), summarized as days since the last purchase, purchases, spend net of returns, product views, products added to the cart, returns, and how the customer's events spread over %d groups of product categories. ",
		strings.Join(build, " and "), retentionDays, cfg.Features.CategoryBuckets)
	allowed := pol.AllowedColumns(build)
	var excluded []string
	for _, c := range dataset.EventsContract.Columns {
		if !slices.Contains(allowed, c.Name) {
			excluded = append(excluded, c.Name)
		}
	}
	p("\n\n**Signals never used.** A customer's region is never a feature: where it is allowed it is read only to check each cohort's make-up by region (Monitoring). ")
	if len(excluded) > 0 {
		p("The privacy policy does not let %s read the event columns %s. ", strings.Join(build, " and "), strings.Join(excluded, ", "))
	}
	p("No data of a customer who did not consent to %s, withdrew that consent or asked for erasure is used to build the cohorts; a customer who did not consent to %s, or opted out of sale or sharing, is left out of the exports (the cohorts' centres and profiles may still reflect that customer's data).\n\n",
		strings.Join(build, " and "), strings.Join(export, " and "))
	p("**How they are weighed.** Every feature counts the same after scaling; at most %d events per customer are used, so that no single customer weighs much. A customer's cohort is the one whose centre is nearest.\n\n", cfg.Features.MaxEvents)
	p("**What a customer can do.** Withdraw consent to %s (or send an opt-out of sale or sharing, such as a Global Privacy Control signal): the customer is left out of the next run's exports, and exports already handed out are recalled (`veil exports recheck`); withdrawing consent to %s keeps the customer's data out of building the cohorts. Ask the shop for a report of what is held about them and in which cohort they are, with its explanation (`veil subject report`), or for erasure.\n\n",
		strings.Join(export, " and "), strings.Join(build, " and "))
}
