package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
)

// Charge is what one run of a pipeline charges one budget: every DP
// release of every step that spends from that budget, composed into one
// ledger record that is checked and spent before the first step reads data.
type Charge struct {
	Ledger  string        `json:"ledger"`
	Dataset string        `json:"dataset"` // the budget's identity (in a plan of a job's own budget: as configured, resolved at run time)
	Events  string        `json:"events"`  // the events table of the steps
	Budget  budget.Policy `json:"budget"`
	// SetBy says who chose the budget: "policy FILE", the data steward's
	// policy, or "job" when the policy declares no budgets (release.Budget).
	SetBy      string           `json:"set_by"`
	Accountant string           `json:"accountant"`
	WindowDays int              `json:"window_days"` // days of data the steps read, ending on the logical date
	Steps      []string         `json:"steps"`
	Releases   []ChargedRelease `json:"releases"`
	Epsilon    float64          `json:"epsilon"` // the run's charge, all releases composed, at Budget.Delta
	Delta      float64          `json:"delta"`

	// first is the first step that spends from the budget: the release
	// path resolves the budget again from its table, budget section and
	// policy when it spends.
	first StepSpec
}

// ChargedRelease is one release of a Charge.
type ChargedRelease struct {
	Step    string           `json:"step"`
	What    string           `json:"what"`
	Event   accountant.Event `json:"event"`
	Epsilon float64          `json:"epsilon"` // this release alone, at the charge's δ
}

// AllEvents returns the charge's accountant events in step order.
func (c *Charge) AllEvents() []accountant.Event {
	evs := make([]accountant.Event, len(c.Releases))
	for i, r := range c.Releases {
		evs[i] = r.Event
	}
	return evs
}

// stepReleases returns the DP releases a step plans, the accountant it
// asks for, its budget section, its policy file, its events table and the
// days of data it reads; nil events when it releases nothing under DP.
func stepReleases(ctx context.Context, st StepSpec, opt dataset.URLOptions) (evs []accountant.Event, acct string, b *budget.Config, policy, events string, window int, err error) {
	for _, w := range st.works() {
		if evs, acct, window, err = w.releases(ctx, opt); err != nil || len(evs) == 0 {
			return nil, "", nil, "", "", 0, err
		}
		policy, _ = w.policy()
		return evs, acct, w.budget(), policy, w.tables().Events, window, nil
	}
	return nil, "", nil, "", "", 0, nil
}

// planBudget names a step's budget for the plan. A job's own budget (the
// policy declares none) is named as configured, without reading anything:
// its budget.dataset, else its events URL. A budget the steward's policy
// sets is resolved as the run will (release.Resolve), which reads the
// events table's manifest, not its data.
func planBudget(_ StepSpec, b *budget.Config, policy, events string) (release.Budget, error) {
	set, err := release.PolicySetsBudgets(context.Background(), policy, dataset.URLOptions{})
	if err != nil || set {
		return release.Resolve(context.Background(), events, b, policy, dataset.URLOptions{})
	}
	if b == nil || b.Ledger == "" {
		return release.Budget{}, fmt.Errorf("%w: plans DP releases but has no budget ledger, and its policy sets no budgets", ErrSpec)
	}
	return release.Budget{Dataset: cmpOr(b.Dataset, events), Ledger: b.Ledger, Policy: b.Policy, SetBy: release.SetByJob}, nil
}

// planCharges groups the DP releases of the steps by the budget they spend
// from (the ledger and the dataset identity that resolve returns) and
// composes each group. A charge covers every day of data any of its steps
// reads.
func planCharges(ctx context.Context, order []StepSpec, opt dataset.URLOptions, resolve func(st StepSpec, b *budget.Config, policy, events string) (release.Budget, error)) ([]*Charge, error) {
	var out []*Charge
	find := func(st StepSpec, b release.Budget, events string) *Charge {
		for _, c := range out {
			if dataset.CanonicalURL(c.Ledger) == dataset.CanonicalURL(b.Ledger) && c.Dataset == b.Dataset {
				return c
			}
		}
		c := &Charge{Ledger: b.Ledger, Dataset: b.Dataset, Events: events, Budget: b.Policy, SetBy: b.SetBy, Accountant: "rdp", first: st}
		out = append(out, c)
		return c
	}
	for _, st := range order {
		evs, acct, jb, policy, events, window, err := stepReleases(ctx, st, opt)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", st.Name, err)
		}
		if len(evs) == 0 {
			continue
		}
		b, err := resolve(st, jb, policy, events)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", st.Name, err)
		}
		c := find(st, b, events)
		if c.Budget != b.Policy {
			return nil, fmt.Errorf("%w: steps %s and %s spend from the budget of %s in %s with different policies (%+v, %+v): one budget has one policy",
				ErrSpec, c.Steps[0], st.Name, c.Dataset, c.Ledger, c.Budget, b.Policy)
		}
		if acct == "pld" {
			c.Accountant = "pld" // tighter; every event kind veil plans has a PLD
		}
		c.WindowDays = max(c.WindowDays, window)
		c.Steps = append(c.Steps, st.Name)
		for _, e := range evs {
			c.Releases = append(c.Releases, ChargedRelease{Step: st.Name, What: e.Note, Event: e})
		}
	}
	for _, c := range out {
		c.Delta = c.Budget.Delta
		for i := range c.Releases {
			r, err := accountant.Spent(c.Accountant, c.Delta, c.Releases[i].Event)
			if err != nil {
				return nil, fmt.Errorf("accounting %s of step %s: %w", c.Releases[i].What, c.Releases[i].Step, err)
			}
			c.Releases[i].Epsilon = r.Epsilon
		}
		r, err := accountant.Spent(c.Accountant, c.Delta, c.AllEvents()...)
		if err != nil {
			return nil, err
		}
		c.Epsilon = r.Epsilon
		c.Steps = slices.Compact(c.Steps)
	}
	return out, nil
}

// chargeRun is the pipeline's part of the release path, after the spec
// was validated and before any step reads data: it checks every step's
// input tables against their contracts (footers only), plans the DP
// releases of every step, and spends each budget once, as one ledger
// record under the pipeline's run id holding the releases of all its
// steps. A pipeline whose releases would exceed a budget is refused
// (budget.ErrExhausted) with nothing spent by that budget and no step
// run. A resumed run finds its records and spends nothing again. It
// returns, by step name, the record that paid for the step's releases.
func chargeRun(ctx context.Context, spec *Spec, order []StepSpec, runID string, opt Options) (map[string]*budget.Record, error) {
	for _, st := range order {
		var tables *privacy.JobTables
		var purposes []string
		for _, w := range st.works() {
			tables, purposes = w.tables(), w.purposes()
		}
		if tables == nil {
			continue
		}
		if producesTable(order, tables.Events) {
			continue // an earlier step of this run writes the table
		}
		uo, err := stepURLOptions(st, opt.URL)
		if err != nil {
			return nil, err
		}
		in, err := tables.Open(ctx, purposes, uo)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", st.Name, err)
		}
		if err := in.CheckContracts(ctx); err != nil {
			return nil, fmt.Errorf("step %s: %w", st.Name, err)
		}
	}
	charges, err := planCharges(ctx, order, opt.URL, func(st StepSpec, b *budget.Config, policy, events string) (release.Budget, error) {
		uo, err := stepURLOptions(st, opt.URL)
		if err != nil {
			return release.Budget{}, err
		}
		return release.Resolve(ctx, events, b, policy, uo)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*budget.Record{}
	for _, c := range charges {
		uo, err := stepURLOptions(c.first, opt.URL)
		if err != nil {
			return nil, err
		}
		_, _, jb, policy, events, _, _ := stepReleases(ctx, c.first, uo)
		rec, b, err := release.Spend(ctx, release.Request{Table: events, Budget: jb, PolicyFile: policy, RunID: runID, Job: spec.Name,
			LogicalDate: opt.LogicalDate, WindowDays: c.WindowDays, Accountant: c.Accountant, Events: c.AllEvents(),
			Config: spec.Hash(), Log: opt.Log}, uo)
		if err != nil {
			return nil, fmt.Errorf("steps %s: %w", strings.Join(c.Steps, ", "), err)
		}
		if b.Dataset != c.Dataset || b.Policy != c.Budget {
			return nil, fmt.Errorf("steps %s: the budget of %s changed while the run was planned (%s, then %s)", strings.Join(c.Steps, ", "), c.Events, c.Dataset, b.Dataset)
		}
		opt.Log.Info("budget spent for the run", "dataset", c.Dataset, "epsilon", rec.Epsilon, "delta", rec.Delta, "steps", c.Steps, "run_id", runID, "budget_set_by", b.SetBy)
		for _, s := range c.Steps {
			out[s] = &rec
		}
	}
	return out, nil
}

// producesTable reports whether a step of the run writes the table at url
// (a pseudonymize step's events).
func producesTable(order []StepSpec, url string) bool {
	for _, st := range order {
		for _, w := range st.works() {
			if t := w.table(); t != "" && t == url {
				return true
			}
		}
	}
	return false
}

// stepURLOptions returns the URL options a step opens its stores with: a
// zone's storage settings (its own keys) apply to the URLs that name the
// zone, not to what the zones share (a budget ledger, say).
func stepURLOptions(st StepSpec, base dataset.URLOptions) (dataset.URLOptions, error) {
	z := st.Zone()
	if z == nil || z.Storage == nil {
		return base, nil
	}
	zo, err := withStorage(base, *z.Storage)
	if err != nil {
		return base, err
	}
	base.Scoped = slices.Clone(base.Scoped)
	for _, u := range st.zoned {
		base.Scoped = append(base.Scoped, dataset.ScopedOptions{Prefix: u, S3: zo.S3, Encryption: zo.Encryption})
	}
	return base, nil
}
