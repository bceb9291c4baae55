package release

import (
	"fmt"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// Charge is what the budget ledger charged a run: the record's ε at its δ
// (every release of the run composed), and the ε of each release alone at
// the same δ. Composition is sublinear, so the releases' ε add up to more
// than the charge; the charge is what the budget lost.
type Charge struct {
	Dataset    string  `json:"dataset"`
	Period     string  `json:"period"`
	Accountant string  `json:"accountant"`
	Epsilon    float64 `json:"epsilon"`
	Delta      float64 `json:"delta"`
	// Releases in the order the run planned them.
	Releases []Share `json:"releases"`
	// SetBy says who chose the budget (SetByNote of the record's SetBy):
	// the steward's policy, or the job when the policy sets none.
	SetBy string `json:"budget_set_by,omitempty"`
}

// Share is one release of a run: the ledger events that share a note
// (a model, a curve point, the audit's training run, a histogram).
type Share struct {
	Release string  `json:"release"`
	Epsilon float64 `json:"epsilon"` // alone, at the charge's δ
	Events  int     `json:"events"`  // ledger events of the release
}

// unnamed names the release of events without a note.
const unnamed = "unnamed release"

// Breakdown returns the charge of a ledger record and its breakdown by
// release: events with the same note are one release, whose ε is
// accountant.Spent of its events alone, with the record's accountant at
// the record's δ.
func Breakdown(rec budget.Record) (Charge, error) {
	c := Charge{Dataset: rec.Dataset, Period: rec.Period, Accountant: rec.Accountant, Epsilon: rec.Epsilon, Delta: rec.Delta, SetBy: SetByNote(rec.SetBy)}
	var names []string
	groups := map[string][]accountant.Event{}
	for _, e := range rec.Events {
		name := e.Note
		if name == "" {
			name = unnamed
		}
		if _, ok := groups[name]; !ok {
			names = append(names, name)
		}
		groups[name] = append(groups[name], e)
	}
	for _, name := range names {
		r, err := accountant.Spent(rec.Accountant, rec.Delta, groups[name]...)
		if err != nil {
			return Charge{}, fmt.Errorf("accounting release %q of run %s: %w", name, rec.RunID, err)
		}
		c.Releases = append(c.Releases, Share{Release: name, Epsilon: r.Epsilon, Events: len(groups[name])})
	}
	return c, nil
}
