package release

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// SetByJob is Budget.SetBy for a budget that the job's own budget section
// chose, because the policy declares no budgets.
const SetByJob = "job"

// What Budget.SetBy says after the policy file and its SHA-256: whether
// the deployment pinned the policy (privacy.PolicyEnv), so that the data
// steward chose it, or the job named it.
const (
	pinnedBy = ", pinned by " + privacy.PolicyEnv
	jobsOwn  = ", chosen by the job: no pinned policy (" + privacy.PolicyEnv + " unset)"
)

// Budget is the budget a release is charged to, and who set it.
type Budget struct {
	Dataset string `json:"dataset"` // the ledger identity of the table's population
	Ledger  string `json:"ledger"`  // URL of the ledger, as its owner spelt it
	budget.Policy
	// SetBy says who chose the budget: "policy FILE (sha256 HEX), pinned
	// by VEIL_POLICY" when the data steward's pinned policy sets it,
	// "policy FILE (sha256 HEX), chosen by the job: ..." when a policy
	// that the job named does (no policy is pinned), SetByJob when the
	// job's budget section does (the policy declares no budgets).
	SetBy string `json:"set_by"`
}

// FromPolicy reports whether a policy file set the budget, not the job's
// budget section.
func (b Budget) FromPolicy() bool { return b.SetBy != SetByJob }

// FromSteward reports whether the data steward's policy, pinned by the
// deployment, set the budget.
func (b Budget) FromSteward() bool { return strings.HasSuffix(b.SetBy, pinnedBy) }

// String says what the budget is and who set it, in one line.
func (b Budget) String() string {
	s := fmt.Sprintf("ε %g at δ %g per %s on %s in %s, set by the %s", b.Epsilon, b.Delta, period(b.Period), b.Dataset, b.Ledger, b.SetBy)
	if !b.FromPolicy() {
		s += " (the policy declares no budgets: the steward did not choose it)"
	}
	return s
}

// SetByNote says in words who chose the budget of a ledger record
// (budget.Record.SetBy), for logs and steward reports; "" for records
// written before the record said. Only a policy pinned by the deployment
// is called the data steward's.
func SetByNote(setBy string) string {
	switch {
	case setBy == "":
		return ""
	case setBy == SetByJob:
		return "the job's own budget section: the policy declares no budgets, so the data steward did not choose this budget"
	case strings.HasSuffix(setBy, pinnedBy):
		return "the data steward's " + setBy
	case strings.HasSuffix(setBy, jobsOwn):
		return setBy + ", so the data steward did not choose this budget"
	}
	return setBy + " (recorded before policies were pinned: not known to be the data steward's)"
}

func period(p string) string {
	if p == "" {
		return "total"
	}
	return p
}

// jobPolicy is the policy a job runs under (privacy.ResolvePolicy: the
// pinned one, else the job's), its name for messages and the SetBy of the
// budgets it sets.
type jobPolicy struct {
	*privacy.Policy
	name, setBy string
}

// policyOf resolves the policy of a job that names file ("" for none).
func policyOf(ctx context.Context, file string, opt dataset.URLOptions) (jobPolicy, error) {
	jp, err := privacy.ResolvePolicy(ctx, file, opt)
	if err != nil {
		return jobPolicy{}, err
	}
	if jp.File == "" {
		return jobPolicy{Policy: jp.Policy, name: "policy (built-in)", setBy: "policy (built-in)" + jobsOwn}, nil
	}
	p := jobPolicy{Policy: jp.Policy, name: "policy " + jp.File}
	p.setBy = fmt.Sprintf("%s (sha256 %s)", p.name, jp.SHA256)
	if jp.Pinned {
		p.name = "data steward's " + p.name
		p.setBy += pinnedBy
	} else {
		p.setBy += jobsOwn
	}
	return p, nil
}

// PolicySetsBudgets reports whether the policy of a job that names
// policyFile ("" for none; the pinned policy when the deployment pins one)
// declares budgets: then its budget applies to every DP release, and a job
// needs no budget section of its own.
func PolicySetsBudgets(ctx context.Context, policyFile string, opt dataset.URLOptions) (bool, error) {
	pol, err := policyOf(ctx, policyFile, opt)
	if err != nil {
		return false, err
	}
	return len(pol.Budgets) > 0, nil
}

// Identity returns the ledger identity that a release over table is
// charged under (budget.Identity), by the rules of the job's policy: when
// the policy declares budgets it is the table's own identity, and a job
// whose budget.dataset names another is refused (ErrBudgetConflict); when
// it declares none, the job's budget.dataset, if any, decides, as it
// always did.
func Identity(ctx context.Context, table string, job *budget.Config, policyFile string, opt dataset.URLOptions) (string, error) {
	pol, err := policyOf(ctx, policyFile, opt)
	if err != nil {
		return "", err
	}
	return identity(ctx, table, job, pol, opt)
}

// TableIdentity returns the ledger identity of table itself
// (budget.Identity with nothing declared): what a table prepared from it
// carries, so that releases over the prepared table charge its events'
// budget, whatever budget.dataset the job that prepared it declares.
func TableIdentity(ctx context.Context, table string, opt dataset.URLOptions) (string, error) {
	return budget.Identity(ctx, table, "", opt)
}

func identity(ctx context.Context, table string, job *budget.Config, pol jobPolicy, opt dataset.URLOptions) (string, error) {
	declared := ""
	if job != nil {
		declared = job.Dataset
	}
	if len(pol.Budgets) == 0 {
		return budget.Identity(ctx, table, declared, opt)
	}
	id, err := budget.Identity(ctx, table, "", opt)
	if err != nil {
		return "", err
	}
	if declared != "" && declared != id {
		return "", fmt.Errorf("%w: budget.dataset %q is not the identity %s of the table %s, and the %s keys budgets by the table's identity: remove budget.dataset",
			ErrBudgetConflict, declared, id, table, pol.name)
	}
	return id, nil
}

// Resolve returns the budget that a DP release over table is charged to.
// When the job's policy (policyFile, "" for the built-in one) declares
// budgets, it is the policy's budget for the table's identity: a job that
// states a budget too must state the same ledger (compared as canonical
// URLs), ε, δ and period (those it leaves out are the policy's), and a
// job whose budget.dataset is not the
// table's identity is refused (ErrBudgetConflict, a usage error); a table
// without a budget in the policy is refused (ErrNoBudget, a refusal by
// policy). When the policy declares none, the job's budget section
// decides, and Budget.SetBy says so.
func Resolve(ctx context.Context, table string, job *budget.Config, policyFile string, opt dataset.URLOptions) (Budget, error) {
	pol, err := policyOf(ctx, policyFile, opt)
	if err != nil {
		return Budget{}, err
	}
	name := pol.name
	id, err := identity(ctx, table, job, pol, opt)
	if err != nil {
		return Budget{}, err
	}
	if len(pol.Budgets) == 0 {
		if job == nil || job.Ledger == "" {
			return Budget{}, fmt.Errorf("%w: a DP release over %s needs a budget: the %s declares no budgets and the job states none (budget: ledger, epsilon, delta, period)",
				budget.ErrPolicy, table, name)
		}
		if err := job.Policy.Validate(); err != nil {
			return Budget{}, fmt.Errorf("budget of the job over %s: %w", table, err)
		}
		return Budget{Dataset: id, Ledger: job.Ledger, Policy: job.Policy, SetBy: SetByJob}, nil
	}
	b, err := policyBudget(ctx, pol, table, id, opt)
	if err != nil {
		return Budget{}, err
	}
	if job != nil && (job.Ledger != "" || job.Epsilon != 0 || job.Delta != 0 || job.Period != "") {
		// What the job states must be the policy's; what it leaves out
		// is the policy's.
		if (job.Ledger != "" && dataset.CanonicalURL(job.Ledger) != dataset.CanonicalURL(b.Ledger)) || (job.Epsilon != 0 && job.Epsilon != b.Epsilon) ||
			(job.Delta != 0 && job.Delta != b.Delta) || (job.Period != "" && period(job.Period) != period(b.Period)) {
			return Budget{}, fmt.Errorf("%w: the job's budget for %s (ledger %s, ε %g, δ %g per %s) is not the %s's (ledger %s, ε %g, δ %g per %s for %s): state the policy's budget or none",
				ErrBudgetConflict, table, job.Ledger, job.Epsilon, job.Delta, period(job.Period), name, b.Ledger, b.Epsilon, b.Delta, period(b.Period), id)
		}
	}
	return b, nil
}

// policyBudget finds the budget that pol sets for the identity id of
// table: under a key that is the identity itself, or a table URL or path
// that resolves to it. Keys that name other tables and cannot be resolved
// are passed over; the refusal names the first such failure.
func policyBudget(ctx context.Context, pol jobPolicy, table, id string, opt dataset.URLOptions) (Budget, error) {
	name := pol.name
	var found []string
	var unresolved error
	for _, key := range slices.Sorted(maps.Keys(pol.Budgets)) {
		match := key == id
		if !match && isTableRef(key) {
			kid, err := budget.Identity(ctx, key, "", opt)
			switch {
			case err != nil && unresolved == nil:
				unresolved = fmt.Errorf("budgets.%s: %w", key, err)
			case err == nil:
				match = kid == id
			}
		}
		if match {
			found = append(found, key)
		}
	}
	switch {
	case len(found) == 0 && unresolved != nil:
		return Budget{}, fmt.Errorf("%s: %w (identity %s) in the %s (%v): the data steward sets budgets", table, ErrNoBudget, id, name, unresolved)
	case len(found) == 0:
		return Budget{}, fmt.Errorf("%s: %w (identity %s) in the %s, which sets budgets for %s only: the data steward sets budgets",
			table, ErrNoBudget, id, name, strings.Join(slices.Sorted(maps.Keys(pol.Budgets)), ", "))
	}
	b := pol.Budgets[found[0]]
	for _, k := range found[1:] {
		if o := pol.Budgets[k]; dataset.CanonicalURL(o.Ledger) != dataset.CanonicalURL(b.Ledger) || o.Policy != b.Policy {
			return Budget{}, fmt.Errorf("%w: %s: budgets.%s and budgets.%s both name the population %s with different budgets", privacy.ErrPolicy, name, found[0], k, id)
		}
	}
	return Budget{Dataset: id, Ledger: b.Ledger, Policy: b.Policy, SetBy: pol.setBy}, nil
}

// isTableRef reports whether a budgets key names a table (a URL or a
// path) rather than a ledger identity.
func isTableRef(key string) bool {
	return strings.Contains(key, "/") || strings.HasPrefix(key, ".")
}

// Request is a run's planned DP releases over one table, as its entry
// point knows them: the input to Spend.
type Request struct {
	Table      string         // the events table the releases read (or a table prepared from it)
	Budget     *budget.Config // the job's budget section; nil when it states none
	PolicyFile string         // the job's privacy policy file; "" for none (the pinned or built-in policy)
	RunID      string
	Job        string // what spends, for the ledger: "segment", "train", "privacy audit", ...
	// LogicalDate and WindowDays are the days of data the releases read;
	// every budget period they overlap is charged.
	LogicalDate time.Time
	WindowDays  int
	Accountant  string             // rdp or pld
	Events      []accountant.Event // every DP release of the run
	Config      string             // the run's configuration fingerprint (budget.Fingerprint)
	Log         *slog.Logger       // nil discards
}

// Spend is the one release path's spend (DESIGN.md, "One release path"):
// every entry point that publishes a DP release calls it, after planning
// all the run's releases and before reading any data. In order it
// validates the request (a run that is not private has nothing to spend
// and must not call it), resolves the table's ledger identity and its
// budget (Resolve: the steward's policy, or the job's budget when the
// policy declares none), opens the ledger and spends once, as one record
// holding every planned event. A retried run gets its record back and
// spends nothing; a run past the budget is refused (budget.ErrExhausted).
func Spend(ctx context.Context, req Request, opt dataset.URLOptions) (budget.Record, Budget, error) {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := req.validate(); err != nil {
		return budget.Record{}, Budget{}, err
	}
	b, err := Resolve(ctx, req.Table, req.Budget, req.PolicyFile, opt)
	if err != nil {
		return budget.Record{}, Budget{}, err
	}
	// The plan is private: every release has a finite ε at the budget's δ.
	if r, err := accountant.Spent(req.Accountant, b.Delta, req.Events...); err != nil {
		return budget.Record{}, Budget{}, fmt.Errorf("accounting the releases of %s over %s: %w", req.Job, req.Table, err)
	} else if !(r.Epsilon > 0) || math.IsInf(r.Epsilon, 0) {
		return budget.Record{}, Budget{}, fmt.Errorf("%w: the releases of %s over %s spend ε %v: a release that is not private cannot be charged", budget.ErrPolicy, req.Job, req.Table, r.Epsilon)
	}
	store, err := open.Store(ctx, b.Ledger, opt)
	if err != nil {
		return budget.Record{}, Budget{}, fmt.Errorf("opening the budget ledger %s: %w", b.Ledger, err)
	}
	rec, err := budget.Open(store, "").Spend(ctx, budget.Request{Dataset: b.Dataset, RunID: req.RunID, Job: req.Job,
		LogicalDate: req.LogicalDate, WindowDays: req.WindowDays, Accountant: req.Accountant, Policy: b.Policy,
		Events: req.Events, Config: req.Config, SetBy: b.SetBy})
	if err != nil {
		return budget.Record{}, Budget{}, err
	}
	switch {
	case !b.FromPolicy():
		log.Warn("the budget was chosen by the job, not by the data steward: the policy declares no budgets",
			"dataset", b.Dataset, "ledger", b.Ledger, "epsilon", b.Epsilon, "delta", b.Delta, "period", period(b.Period))
	case !b.FromSteward():
		log.Warn("the budget was chosen by the job, not by the data steward: the policy is the job's, none is pinned ("+privacy.PolicyEnv+" unset)",
			"set_by", b.SetBy, "dataset", b.Dataset, "ledger", b.Ledger, "epsilon", b.Epsilon, "delta", b.Delta, "period", period(b.Period))
	}
	return rec, b, nil
}

// validate checks what Spend needs before it reads anything.
func (r Request) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", budget.ErrPolicy, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Table == "":
		return bad("a release of %s names no table", r.Job)
	case r.RunID == "":
		return bad("a release over %s has no run id", r.Table)
	case len(r.Events) == 0:
		return bad("%s plans no DP release over %s: nothing to charge", r.Job, r.Table)
	case r.Accountant != "rdp" && r.Accountant != "pld":
		return bad("accountant %q (want rdp or pld)", r.Accountant)
	case r.LogicalDate.IsZero():
		return bad("a release over %s has no logical date", r.Table)
	case r.WindowDays < 0:
		return bad("a window of %d days over %s", r.WindowDays, r.Table)
	}
	if r.Budget != nil && r.Budget.Epsilon != 0 && r.Budget.Delta != 0 {
		if err := r.Budget.Policy.Validate(); err != nil {
			return fmt.Errorf("the job's budget over %s: %w", r.Table, err)
		}
	}
	return nil
}
