package segment

import (
	"bytes"
	"cmp"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
)

// DatasheetFile is the name of the datasheet in an export.
const DatasheetFile = "datasheet.md"

// Datasheet writes the datasheet of a cohort export, in the sections of
// Gebru et al., "Datasheets for Datasets" (motivation, composition,
// collection process, preprocessing, uses, distribution, maintenance), for
// the marketing team that receives the export and the steward who reviews
// it. It is part of the release: with noisy sizes (always under DP
// k-means) it holds no exact count of subjects, events, consent records or
// drops, and no statistic of the private data; those are in the steward
// appendix (StewardAppendix). A run without DP k-means says plainly that it
// is not differentially private.
func Datasheet(rep *Report, cfg Config, pol *privacy.Policy, build, export []string) []byte {
	return DatasheetOf(rep, cfg, pol, build, export, "")
}

// DatasheetOf is Datasheet for the export written by the write writeID: it
// names the files as they are in the export (assignments-WRITEID.csv, as
// dataset.Output names every file of a write), not as they were written
// (assignments.csv). An empty writeID keeps the names as written.
func DatasheetOf(rep *Report, cfg Config, pol *privacy.Policy, build, export []string, writeID string) []byte {
	name := func(rel string) string {
		if writeID == "" {
			return rel
		}
		ext := path.Ext(rel)
		return strings.TrimSuffix(rel, ext) + "-" + writeID + ext
	}
	var b bytes.Buffer
	exact := !rep.noisy()
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	purposeList := func(ps []string) string {
		var parts []string
		for _, name := range ps {
			parts = append(parts, fmt.Sprintf("%s (%s)", name, pol.Purposes[name].Description))
		}
		return strings.Join(parts, " and ")
	}
	p("# Datasheet: customer cohorts for %s\n\n", rep.LogicalDate)
	p("Run `%s`, produced by veil. Output: `%s`.\n\n", rep.RunID, rep.Output)

	p("## Motivation\n\n")
	p("These cohorts group the shop's customers by how they shop, so that campaigns can address each group in its own way. ")
	p("They were built for the purposes %s, and exported for %s, under privacy policy version %d. ", purposeList(build), purposeList(export), pol.Version)
	p("Only customers who consented to those purposes are in them.")
	if js := rep.Filter.Jurisdictions; len(js) > 0 {
		p(" Only customers whose latest consent record names %s are in them (geographic segregation): other regions' customers are in other exports, with their own keys.", strings.Join(js, " or "))
	}
	p("\n\n")

	p("## Composition\n\n")
	p("Each row of `%s` (and `%s`) is one customer, named by a pseudonymous token, with the cohort they belong to and how far they are from its centre. ", name("assignments.parquet"), name("assignments.csv"))
	p("`%s` (and `%s`, `%s`) describe each cohort in plain words; `%s` shows the cohorts' sizes and `%s` where the cohorts lie against each other. ",
		name("profiles.csv"), name("profiles.parquet"), name("profiles.json"), name("cohort_sizes.png"), name("cohort_map.png"))
	if exact {
		p("There are %d cohorts and %d exported customers.\n\n", rep.Cohorts, rep.Exported)
	} else {
		p("There are %d cohorts.\n\n", rep.Cohorts)
	}
	p("Cohort sizes count every customer clustered, also those not exported because they did not allow %s.\n\n", strings.Join(export, " and "))
	p("| cohort | customers | in words |\n|---:|---:|---|\n")
	for _, pr := range rep.releasedProfiles() {
		size := fmt.Sprint(pr.Size)
		if pr.NoisySize != nil {
			size = fmt.Sprintf("about %d", *pr.NoisySize)
		}
		words := pr.Explanation
		if pr.Note != "" {
			words += " (" + pr.Note + ")"
		}
		p("| %d | %s | %s |\n", pr.CohortID, size, strings.ReplaceAll(words, "|", "/"))
	}
	p("\nNo cohort in the assignments has fewer than %d exported customers, counted exactly: smaller groups were %s, and a cohort with fewer customers who allow %s than that is withheld from the assignments. ",
		cfg.Floor.MinSize, map[string]string{"merge": "merged into the nearest cohort", "suppress": "left out"}[cfg.Floor.Small], strings.Join(export, " and "))
	p("The profiles describe every cohort, whether or not its customers are in the assignments. ")
	if rep.DP != nil {
		p("Cohort sizes are approximate: they carry random noise (differential privacy), and the cohort centres were computed under differential privacy with ε = %.3g, δ = %.3g (%s accountant) for DP k-means alone. ", rep.DP.Epsilon, rep.DP.Delta, rep.DP.Accountant)
		ledgerCharge(p, rep)
		p(" Only the cohort centres, the profiles and the noisy sizes are differentially private. The assignments file is not a DP release: it lists real customers (by pseudonymous token, exactly, each in their cohort), who consented to %s; it is personal data processed under that consent, and the guarantee above does not cover it.\n\n", strings.Join(export, " and "))
	} else {
		p("**This export is not differentially private**: the cohort centres, profiles and assignments are computed exactly from the customers' data, so they can reveal facts about single customers. ")
		if !exact {
			p("The cohort sizes marked \"about\" carry random noise, but beside exact centres that noise protects no one, so it is not a privacy guarantee and no privacy budget was charged for it; the exact counts are kept for the data steward.\n\n")
		} else {
			p("The data describe %d customers (%d events) who allowed %s; %d of them, who also allowed %s and were not erased or opted out, are exported.\n\n",
				rep.Subjects, rep.Events, strings.Join(build, " and "), rep.Exported, strings.Join(export, " and "))
		}
	}
	p("The data hold no names, e-mail addresses, phone numbers or other direct identifiers: the tokens are keyed hashes of the shop's customer ids, and veil refuses input in which its PII scan finds such values.\n\n")

	p("## Collection process\n\n")
	if exact {
		p("The shop recorded its customers' browsing and purchases (events) and their consent choices (a consent ledger, %d consent records as of the logical date). ", rep.Filter.Consent.Records)
	} else {
		p("The shop recorded its customers' browsing and purchases (events) and their consent choices (a consent ledger). ")
	}
	p("For each customer veil used the latest consent choice recorded on or before %s: a customer who never consented, denied, withdrew, opted out of sale or sharing, or asked to be erased is left out. ", rep.LogicalDate)
	if exact && len(rep.Filter.RowsDropped) > 0 {
		var reasons []string
		for r, n := range rep.Filter.RowsDropped {
			if n > 0 {
				reasons = append(reasons, fmt.Sprintf("%s: %d", strings.ReplaceAll(r, "_", " "), n))
			}
		}
		sort.Strings(reasons)
		p("Of %d events read, %d were used; the others were dropped (%s).", rep.Filter.RowsRead, rep.Filter.RowsKept, strings.Join(reasons, ", "))
	}
	p("\n\n")

	p("## Preprocessing\n\n")
	p("Events older than %d days before the logical date were not used (the retention of the purposes). ", rep.Filter.RetentionDays)
	p("Each customer's events were summarized into features (recency, frequency, spending, browsing and the share of each product category); at most %d events per customer were used, so that no single customer weighs much. ", cfg.Features.MaxEvents)
	if rep.DP != nil {
		p("Features were scaled with fixed constants and each customer's vector was bounded to a norm of %g, and %d rounds of noisy k-means looked for %d cohorts. ", rep.DP.ClipRadius, rep.DP.Iterations, rep.K)
	} else if exact {
		p("Features were log-scaled and standardized, and k-means found %d cohorts (silhouette %.2f). ", rep.K, rep.Silhouette)
	} else {
		p("Features were log-scaled and standardized, and k-means found %d cohorts. ", rep.K)
	}
	p("%s\n\n", survivors(rep, cfg.Floor))

	if len(rep.WhiteBox) > 0 {
		p("White-box privacy audits checked that the DP mechanisms do what the accountant assumes (their noise, clipping and sampling measured on public synthetic rows, never on customers' data):\n\n")
		p("| mechanism | proven ε | empirical lower bound | confidence | method |\n|---|---:|---:|---:|---|\n")
		for _, a := range rep.WhiteBox {
			p("| %s | %.4g | %.4g | %.0f%% | %s |\n", a.Mechanism, a.ProvenEpsilon, a.EpsilonLowerBound, 100*a.Confidence, a.Method)
		}
		p("\n")
	}
	mainParameters(p, cfg, pol, build, export, rep.Filter.RetentionDays)
	p("## Uses\n\n")
	p("Use these cohorts for %s only. ", purposeList(export))
	p("Do not try to identify the customers behind the tokens, do not combine the export with other data to do so, do not use it for decisions with legal or similarly significant effects on a person (credit, employment, pricing for an individual), and do not use it for another purpose without a new consent basis.\n\n")

	p("## Distribution\n\n")
	p("The export is for the shop's marketing team and its processors under contract. It is written once, with a manifest of checksums (`_manifest.json`, which lists every file of the export); `veil lineage verify %s` checks that nothing was changed. It is not to be published.\n\n", rep.RunID)

	p("## Maintenance and retention\n\n")
	p("veil builds a new export every run; use the latest (the `latest.json` pointer of the pipeline) and delete older ones within %d days, the retention of the %s purpose. ", pol.RetentionDays(export), strings.Join(export, " and "))
	p("A customer who withdraws consent or asks to be erased is left out of the next run; `veil exports recheck` lists who must be recalled from exports already handed out. ")
	if rep.Contributors != nil {
		p("A keyed filter of who contributed to this export is kept by the data steward, not shipped with it, so that `veil lineage impact --subject TOKEN` can list the exports an erasure request affects, which must then be deleted or rebuilt.")
	}
	p("\n")
	if m := rep.Monitoring; m != nil {
		p("\n## Monitoring\n\n")
		if len(m.Warnings) == 0 {
			p("No warnings.\n\n")
		}
		for _, w := range m.Warnings {
			p("- **Warning**: %s.\n", w)
		}
		if len(m.Warnings) > 0 {
			p("\n")
		}
		if c := m.Composition; c != nil && c.MaxOver != nil {
			p("**Who is in which cohort.** Each cohort's make-up by region and by jurisdiction (the privacy law of the customer's region) against all exported cohorts together, for groups of at least %d customers. ", cfg.Monitoring.MinGroupSubjects)
			p("Most over-represented: %s %s in cohort %d (%.0f%% of the cohort, %.0f%% overall, %.2f×). ", c.MaxOver.Dimension, c.MaxOver.Group, c.MaxOver.Cohort, 100*c.MaxOver.CohortShare, 100*c.MaxOver.PopulationShare, c.MaxOver.Ratio)
			p("Most under-represented: %s %s in cohort %d (%.0f%% of the cohort, %.0f%% overall, %.2f×). ", c.MaxUnder.Dimension, c.MaxUnder.Group, c.MaxUnder.Cohort, 100*c.MaxUnder.CohortShare, 100*c.MaxUnder.PopulationShare, c.MaxUnder.Ratio)
			p("A cohort that gathers one region or jurisdiction can turn a campaign into unequal treatment by place; the full table is in the run report.\n\n")
		}
		if m.Plot != "" {
			p("![composition and drift](%s)\n\n", m.Plot)
		}
		if d := m.Drift; d != nil {
			p("**Drift since the previous run** (%s, %s): population stability index (PSI; below 0.1 stable, above 0.2 a real shift) of every feature against that run's deciles, and of the cohort sizes (cohorts matched by nearest centre).\n\n", d.PreviousRun, d.PreviousDate)
			p("| what | PSI |\n|---|---|\n| cohort sizes | %.3f |\n", d.CohortPSI)
			feats := slices.Clone(d.Features)
			slices.SortFunc(feats, func(a, b FeatureDrift) int { return cmp.Compare(b.PSI, a.PSI) })
			for _, f := range feats[:min(len(feats), 8)] {
				p("| %s | %.3f |\n", f.Feature, f.PSI)
			}
			p("\n")
		} else {
			p("**Drift**: no earlier run of this job to compare with.\n")
		}
	}
	return b.Bytes()
}

// survivors says how many of the cohorts k-means was asked for are in the
// export, and why the others are not.
func survivors(rep *Report, fl Floor) string {
	if rep.Cohorts >= rep.K {
		return fmt.Sprintf("All %d are in this export.", rep.K)
	}
	what := map[string]string{"merge": "merged into the nearest cohort", "suppress": "left out"}[fl.Small]
	size := "size"
	if rep.noisy() {
		size = "noisy size"
	}
	return fmt.Sprintf("%d of the %d are in this export: the other %d had a %s below the floor of %d customers and were %s (a cohort can also come out empty when no customer is nearest to its centre).",
		rep.Cohorts, rep.K, rep.K-rep.Cohorts, size, fl.MinSize, what)
}

// ledgerCharge states what the budget ledger charged for the run: the
// record's ε at its δ, for every DP release of the run together (the noisy
// sizes as well as DP k-means; in a pipeline, its other steps' too), and
// each release alone at the same δ.
func ledgerCharge(p func(string, ...any), rep *Report) {
	if rep.Spent == nil {
		p("No budget ledger charge is recorded for this run.")
		return
	}
	r := *rep.Spent
	p("The privacy budget ledger charged this run ε = %.3g at δ = %.3g (%s accountant, budget period %s) for all its DP releases together", r.Epsilon, r.Delta, r.Accountant, r.Period)
	c, err := release.Breakdown(r)
	if err != nil || len(c.Releases) == 0 {
		p(".")
		return
	}
	var parts []string
	for _, s := range c.Releases {
		parts = append(parts, fmt.Sprintf("%s, ε = %.3g", s.Release, s.Epsilon))
	}
	p("; each release alone, at the same δ: %s. That charge, not DP k-means' ε alone, is what this run cost the privacy budget.", strings.Join(parts, "; "))
}
