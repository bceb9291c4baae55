package jobs

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// work is the contract of a kind of step: pseudonymize, segment and train
// each implement it, in step_KIND.go, and the runner, the recorder, the
// plan and the metrics know a step only through it. Adding a kind is a
// field of StepSpec and of StepResult (its YAML and JSON key) and a type
// implementing work and resultKind, picked in StepSpec.works and
// StepResult.kind.
type work interface {
	// validate checks the work's own settings.
	validate() error
	// doc says what the step does (the lineage documentation facet).
	doc() string
	// purposes lists what the work needs (nil: none, it runs before any
	// purpose).
	purposes() []string
	// tables are the consented tables the work reads, nil if it reads
	// none.
	tables() *privacy.JobTables
	// input names the table the work reads, for lineage and the audit log.
	input() lineage.Dataset
	// table is the table the work writes in place for later steps to read
	// ("": none; outputs under a run directory are not tables).
	table() string
	// urls calls fn on every URL field of the work (those may hold {zone}).
	urls(fn func(*string))
	// zoneOutputs are the URLs that must name the zone under segregation.
	zoneOutputs() []string
	// jurisdictions the work restricts itself to (a segregated step's are
	// its zone's).
	jurisdictions() []string
	// inZone sets st's work to a copy of this one restricted to z's
	// jurisdictions.
	inZone(st *StepSpec, z *Zone)
	// accesses adds the locations the work reads and writes; steward is
	// the spec's default steward location.
	accesses(step, steward string, add func(Access))
	// policy is the policy file the work names ("": the built-in one);
	// ok is false for work that runs under no policy.
	policy() (file string, ok bool)
	// budget is the work's own budget section, if any.
	budget() *budget.Config
	// releases plans the work's DP releases (none: nil), the accountant it
	// asks for and the days of data it reads.
	releases(ctx context.Context, opt dataset.URLOptions) (evs []accountant.Event, acct string, window int, err error)
	// nonPrivate says what the work releases without differential
	// privacy that its policy must allow before the run starts ("": none).
	nonPrivate() string
	// plan is the step's line of a Plan, without its DP releases.
	plan() StepPlan
	// run does the work once.
	run(ctx context.Context, rs runStepEnv) (*StepResult, error)
	// record adds what the step read to its audit record and, when it
	// finished (sr not nil), its outcome to its lineage event and audit
	// record.
	record(ctx context.Context, r *recorder, ev *lineage.Event, a *lineage.AuditRecord, sr *StepResult)
}

// resultKind is the kind of a step's result, for what reads results
// without the spec: metrics and the public result.
type resultKind interface {
	// observe sets the metrics of a finished step.
	observe(m *Metrics, r StepResult)
	// public leaves out of r what only the steward may read.
	public(r *StepResult)
}

// works lists the kinds of work a step sets (a valid step sets one).
func (st StepSpec) works() []work {
	var w []work
	if st.Pseudonymize != nil {
		w = append(w, pseudonymizeWork{st.Pseudonymize})
	}
	if st.Segment != nil {
		w = append(w, newSegmentWork(st.Segment))
	}
	if st.Train != nil {
		w = append(w, newTrainWork(st.Train))
	}
	return w
}

// work returns the step's work, nil if it sets none (a spec that was not
// validated).
func (st StepSpec) work() work {
	if w := st.works(); len(w) > 0 {
		return w[0]
	}
	return nil
}

// kind returns the kind of a step result, nil if it has none.
func (r StepResult) kind() resultKind {
	switch {
	case r.Pseudonymize != nil:
		return pseudonymizeWork{}
	case r.Segment != nil:
		return segmentWork{}
	case r.Train != nil:
		return trainWork{}
	}
	return nil
}

// Public returns the result as it may be printed (to the scheduler's
// logs, read by many): a DP step shows its public report only; steps
// without a DP release keep their exact figures.
func (r StepResult) Public() StepResult {
	if k := r.kind(); k != nil {
		k.public(&r)
	}
	return r
}

// runStepEnv is what one attempt of a step gets besides its work.
type runStepEnv struct {
	spec    *Spec
	step    string
	id      string // the step's stable run id
	opt     Options
	charged *budget.Record // the ledger record that paid for its releases
}

// consented is the part of work shared by the kinds that read consented
// events (segment, train): tables, an output, a steward location, a
// budget and a policy.
type consented struct {
	t        *privacy.JobTables
	output   *string
	steward  string
	b        *budget.Config
	produces string // what the output holds, for access checks (exports, models)
	plans    releasePlanner
}

// releasePlanner is the part of a job configuration the release path
// asks: its DP releases, and the days of data it reads.
type releasePlanner interface {
	Releases() ([]accountant.Event, string, error)
	WindowDays(ctx context.Context, opt dataset.URLOptions) (int, error)
}

func (c consented) releases(ctx context.Context, opt dataset.URLOptions) ([]accountant.Event, string, int, error) {
	evs, acct, err := c.plans.Releases()
	if err != nil {
		return nil, "", 0, err
	}
	window, err := c.plans.WindowDays(ctx, opt)
	return evs, acct, window, err
}

func (c consented) tables() *privacy.JobTables { return c.t }

func (c consented) table() string { return "" }

func (c consented) input() lineage.Dataset { return tableDataset(c.t.Events, dataset.EventsContract) }

func (c consented) urls(fn func(*string)) {
	c.t.URLs(fn)
	fn(c.output)
	if c.b != nil {
		fn(&c.b.Ledger)
		fn(&c.b.Dataset)
	}
}

func (c consented) zoneOutputs() []string { return []string{*c.output} }

func (c consented) jurisdictions() []string { return c.t.Jurisdictions }

func (c consented) policy() (string, bool) { return c.t.Policy, true }

func (c consented) budget() *budget.Config { return c.b }

func (c consented) nonPrivate() string { return "" }

func (c consented) accesses(step, steward string, add func(Access)) {
	t := c.t
	add(Access{URL: t.Events, What: step + " events"})
	add(Access{URL: cmpOr(t.Consent, dataset.SiblingURL(t.Events, "consent")), What: step + " consent"})
	add(Access{URL: cmpOr(t.Erasure, dataset.SiblingURL(t.Events, "erasure")), What: step + " erasure requests"})
	add(Access{URL: *c.output, Write: true, What: step + " " + c.produces})
	add(Access{URL: cmpOr(c.steward, steward), Write: true, What: step + " steward reports", Steward: true})
	if c.b != nil {
		add(Access{URL: c.b.Ledger, Write: true, What: step + " budget ledger"})
	}
	policyLedgers(t.Policy, step, add)
}

// policyLedgers adds the ledgers of the budgets a step's policy file sets:
// the step writes to them. A file that cannot be read adds none (the run
// refuses it).
func policyLedgers(file, step string, add func(Access)) {
	if file == "" {
		return
	}
	pol, err := privacy.LoadPolicy(file)
	if err != nil {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(pol.Budgets)) {
		add(Access{URL: pol.Budgets[key].Ledger, Write: true, What: fmt.Sprintf("%s budget ledger of %s (policy %s)", step, key, file)})
	}
}

// recordRun adds what every step that reads consented events shares: the
// input with its row count, the output with its schema and column lineage
// (columns), the contributors filter, the audit's counts (the audit log is
// the steward's); it returns the filter's part of the veil_privacy facet
// for the step to complete. withheld (the step made a DP release) leaves
// every exact count out of the event.
func (c consented) recordRun(ctx context.Context, r *recorder, ev *lineage.Event, a *lineage.AuditRecord, f privacy.Report, day, output string,
	contract *dataset.Contract, columns func(events lineage.Dataset) lineage.Facet, contributors *lineage.Contributors, withheld bool) lineage.Privacy {
	in := tableDataset(c.t.Events, dataset.EventsContract)
	if !withheld {
		in.InputFacets = map[string]lineage.Facet{"dataQualityMetrics": lineage.DataQualityMetrics(f.RowsRead)}
	}
	out := r.outputDataset(ctx, output, contract, withheld)
	out.Facets["columnLineage"] = columns(lineage.DatasetFromURL(c.t.Events))
	ev.Inputs, ev.Outputs = []lineage.Dataset{in}, []lineage.Dataset{out}
	if contributors != nil {
		f := contributors.Facet()
		if withheld {
			// The filter's size follows the exact number of subjects (a
			// power of two at least as large): a subject can tip it over a
			// boundary. The filter's header has it, in the steward report.
			delete(f, "capacity")
			delete(f, "bits")
			delete(f, "hashes")
		}
		ev.Run.Facets["veil_contributors"] = f
	}
	a.Writes = []string{output}
	a.RowsRead, a.RowsKept = f.RowsRead, f.RowsKept
	return lineage.Privacy{Purposes: f.Purposes, LogicalDate: day, RowsRead: f.RowsRead, RowsKept: f.RowsKept,
		RowsDropped: f.RowsDropped, SubjectsKept: f.SubjectsKept, ConsentRecords: f.Consent.Records, ConsentSnapshot: f.Consent.Snapshot, Jurisdictions: f.Jurisdictions,
		Withheld: withheld}
}

// consentedPlan is the plan line of a step that reads consented events.
func (c consented) consentedPlan(purposes ...string) StepPlan {
	return StepPlan{Reads: []string{c.t.Events, "consent and erasure next to it"}, Purposes: purposes, Writes: *c.output + "/dt=<logical date>/run=<run id>/"}
}

// inputField names a column of the events a column of the output follows
// from.
func inputField(events lineage.Dataset, field, typ, sub string, masking bool) lineage.InputField {
	return lineage.InputField{Dataset: events, Field: field, Type: typ, Subtype: sub, Masking: masking}
}
