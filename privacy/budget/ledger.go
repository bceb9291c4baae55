package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/internal/failpoint"
	"github.com/veil-privacy/veil/privacy/accountant"
)

var (
	// ErrExhausted is returned (inside a *RefusedError) when a spend would
	// pass the budget. The CLI maps it to exit code 3.
	ErrExhausted = errors.New("privacy budget exhausted")
	// ErrTampered is returned when the ledger's hash chain is broken.
	ErrTampered = errors.New("budget ledger is corrupt or was edited")
	// ErrPolicy is returned for an invalid budget policy.
	ErrPolicy = errors.New("invalid budget policy")
	// ErrRunReused is returned when a run id that already has a record
	// asks to spend for other planned events. It wraps ErrPolicy: the CLI
	// maps it to exit code 2.
	ErrRunReused = fmt.Errorf("%w: the run id already spent budget for other planned releases", ErrPolicy)
)

// Policy is the budget of one dataset: at most Epsilon at Delta per Period.
type Policy struct {
	Epsilon float64 `yaml:"epsilon" json:"epsilon"`
	Delta   float64 `yaml:"delta" json:"delta"`
	Period  string  `yaml:"period" json:"period"` // total, year, quarter, month, week or day
}

// Config names the ledger and the budget a job's DP releases spend: the
// budget section of a job file.
type Config struct {
	Ledger  string `yaml:"ledger"`  // URL of the ledger
	Dataset string `yaml:"dataset"` // name spends are recorded under; default: the events URL
	Policy  `yaml:",inline"`
}

// Validate reports whether p is usable.
func (p Policy) Validate() error {
	if !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0) {
		return fmt.Errorf("%w: epsilon %v must be positive and finite", ErrPolicy, p.Epsilon)
	}
	if !(p.Delta > 0 && p.Delta < 1) {
		return fmt.Errorf("%w: delta %v must be in (0, 1)", ErrPolicy, p.Delta)
	}
	if _, err := PeriodKey(p.Period, time.Time{}); err != nil {
		return err
	}
	return nil
}

// PeriodKey names the budget period that day falls in.
func PeriodKey(period string, day time.Time) (string, error) {
	day = day.UTC()
	switch period {
	case "total", "":
		return "total", nil
	case "year":
		return day.Format("2006"), nil
	case "quarter":
		return fmt.Sprintf("%d-Q%d", day.Year(), (int(day.Month())-1)/3+1), nil
	case "month":
		return day.Format("2006-01"), nil
	case "week":
		y, w := day.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w), nil
	case "day":
		return day.Format(time.DateOnly), nil
	}
	return "", fmt.Errorf("%w: period %q (want total, year, quarter, month, week or day)", ErrPolicy, period)
}

// PeriodKeys names the budget periods that a window of days days ending on
// day overlaps, oldest first (days < 1 counts as the day alone).
func PeriodKeys(period string, day time.Time, days int) ([]string, error) {
	day = day.UTC().Truncate(24 * time.Hour)
	var keys []string
	for d := day.AddDate(0, 0, 1-max(1, days)); !d.After(day); d = d.AddDate(0, 0, 1) {
		k, err := PeriodKey(period, d)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 || keys[len(keys)-1] != k {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Record is one spend. Records are never changed once written.
type Record struct {
	Seq         int    `json:"seq"`
	Dataset     string `json:"dataset"`
	RunID       string `json:"run_id"`
	Job         string `json:"job,omitempty"`
	LogicalDate string `json:"logical_date"`
	Period      string `json:"period"` // the logical date's period
	// Periods are all the periods the record charges: those its data
	// window overlaps. Records written before windows have only Period.
	Periods []string `json:"periods,omitempty"`
	// WindowDays is how many days of data, ending on LogicalDate, the
	// release read. Every spend is checked against every earlier record
	// whose days overlap the periods it charges, at the spender's period
	// length: a record is never out of reach because it was written with
	// another period (a day, a month) than the one asked now.
	WindowDays int `json:"window_days,omitempty"`
	// Config is the run's configuration fingerprint (Request.Config).
	Config string `json:"config_sha256,omitempty"`
	// SetBy says who chose the budget the record was checked against
	// (Request.SetBy): "policy FILE" for the data steward's policy, "job"
	// for a job's own budget section. Older records leave it out.
	SetBy      string             `json:"budget_set_by,omitempty"`
	RecordedAt time.Time          `json:"recorded_at"`
	Accountant string             `json:"accountant"`
	Epsilon    float64            `json:"epsilon"` // what this run spends at Delta
	Delta      float64            `json:"delta"`
	Events     []accountant.Event `json:"events"`
	PrevSHA256 string             `json:"prev_sha256"`
}

// keys returns the periods of kind period that the record's days overlap:
// its window (one day for records written before windows) ending on its
// logical date.
func (r Record) keys(period string) []string {
	day, err := time.Parse(time.DateOnly, r.LogicalDate)
	if err != nil {
		return r.charges()
	}
	k, err := PeriodKeys(period, day, r.WindowDays)
	if err != nil {
		return r.charges()
	}
	return k
}

// charges returns the periods a record charges.
func (r Record) charges() []string {
	if len(r.Periods) > 0 {
		return r.Periods
	}
	return []string{r.Period}
}

// RefusedError says why a spend was refused and what is left.
type RefusedError struct {
	Dataset   string
	Period    string
	Planned   float64 // ε of the planned spend alone
	Spent     float64 // ε already spent in the period
	Total     float64 // ε if the spend went ahead
	Remaining float64 // ε left before the spend
	Policy    Policy
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s: %v: period %s: the run would spend ε %.4g, bringing the period to ε %.4g of %.4g at δ %g; ε %.4g remains",
		e.Dataset, ErrExhausted, e.Period, e.Planned, e.Total, e.Policy.Epsilon, e.Policy.Delta, math.Max(0, e.Remaining))
}

// Unwrap makes errors.Is(err, ErrExhausted) true.
func (e *RefusedError) Unwrap() error { return ErrExhausted }

// Ledger is the budget ledger under a prefix of a store.
type Ledger struct {
	store  dataset.Store
	prefix string
	now    func() time.Time
}

// Open returns the ledger under prefix in s.
func Open(s dataset.Store, prefix string) *Ledger {
	return &Ledger{store: s, prefix: strings.Trim(prefix, "/"), now: time.Now}
}

func (l *Ledger) chain(name string) dataset.Chain {
	return dataset.Chain{Store: l.store, Prefix: dataset.Join(l.prefix, url.PathEscape(name))}
}

// Records returns the records of a dataset in order, after checking the
// hash chain.
func (l *Ledger) Records(ctx context.Context, name string) ([]Record, error) {
	entries, err := l.chain(name).Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("budget ledger of %s: %w: %w", name, ErrTampered, err)
	}
	out := make([]Record, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal(e.Data, &out[i]); err != nil || out[i].Dataset != name {
			return nil, fmt.Errorf("%s: %w: record %d", e.Key, ErrTampered, e.Seq)
		}
	}
	return out, nil
}

// Request is a planned spend.
type Request struct {
	Dataset     string
	RunID       string
	Job         string
	LogicalDate time.Time
	// WindowDays is how many days of data the release reads, ending on
	// LogicalDate (0 or 1: the logical day alone). The spend charges every
	// budget period that window overlaps.
	WindowDays int
	Accountant string // rdp or pld
	Events     []accountant.Event
	Policy     Policy
	// Config is a fingerprint of everything the run does (its whole
	// configuration: outputs included). A run id that already spent is
	// honoured again, spending nothing, only for the same fingerprint: the
	// same id with another output would otherwise release a second model
	// with fresh noise for free.
	Config string
	// SetBy says who chose Policy, for the record (privacy/release).
	SetBy string
}

// periodSpent is the ε that records spend together at delta: the smaller
// of basic composition (Σε when Σδ ≤ delta) and RDP composition of all their
// events at delta. Both are valid upper bounds.
func periodSpent(records []Record, delta float64) (float64, error) {
	var sumEps, sumDelta float64
	var events []accountant.Event
	for _, r := range records {
		sumEps += r.Epsilon
		sumDelta += r.Delta
		events = append(events, r.Events...)
	}
	if len(records) == 0 {
		return 0, nil
	}
	basic := math.Inf(1)
	if sumDelta <= delta {
		basic = sumEps
	}
	rdp, err := accountant.Spent("rdp", delta, events...)
	if err != nil {
		return 0, err
	}
	return math.Min(basic, rdp.Epsilon), nil
}

// Spend records the planned spend of a run if the budget allows it, and
// refuses it with a *RefusedError otherwise. Spending again for a run id
// that already has a record with the same planned events returns that
// record and spends nothing: a resumed or retried run never spends twice.
// The same run id with other planned events is refused (ErrRunReused): it
// would release what it was never charged for.
func (l *Ledger) Spend(ctx context.Context, req Request) (Record, error) {
	if err := req.Policy.Validate(); err != nil {
		return Record{}, err
	}
	if req.RunID == "" || req.Dataset == "" {
		return Record{}, fmt.Errorf("%w: a spend needs a dataset and a run id", ErrPolicy)
	}
	if req.WindowDays < 0 || req.WindowDays > 366*100 {
		return Record{}, fmt.Errorf("%w: a window of %d days", ErrPolicy, req.WindowDays)
	}
	period, _ := PeriodKey(req.Policy.Period, req.LogicalDate)
	periods, _ := PeriodKeys(req.Policy.Period, req.LogicalDate, req.WindowDays)
	planned, err := accountant.Spent(req.Accountant, req.Policy.Delta, req.Events...)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	var existing *Record
	_, err = l.chain(req.Dataset).Append(ctx, func(entries []dataset.ChainEntry, seq int, prev string) ([]byte, error) {
		inPeriod := map[string][]Record{}
		for _, e := range entries {
			var r Record
			if err := json.Unmarshal(e.Data, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Key, ErrTampered)
			}
			if r.RunID == req.RunID {
				existing = &r
				return nil, errAlreadySpent
			}
			for _, k := range r.keys(req.Policy.Period) {
				inPeriod[k] = append(inPeriod[k], r)
			}
		}
		rec = Record{
			Seq: seq, Dataset: req.Dataset, RunID: req.RunID, Job: req.Job,
			LogicalDate: req.LogicalDate.UTC().Format(time.DateOnly), Period: period, Periods: periods, WindowDays: req.WindowDays, Config: req.Config, SetBy: req.SetBy,
			RecordedAt: l.now().UTC(), Accountant: req.Accountant,
			Epsilon: planned.Epsilon, Delta: req.Policy.Delta, Events: req.Events, PrevSHA256: prev,
		}
		// Every period the window overlaps must have room.
		for _, k := range periods {
			spent, err := periodSpent(inPeriod[k], req.Policy.Delta)
			if err != nil {
				return nil, err
			}
			total, err := periodSpent(append(inPeriod[k], rec), req.Policy.Delta)
			if err != nil {
				return nil, err
			}
			if total > req.Policy.Epsilon {
				return nil, &RefusedError{Dataset: req.Dataset, Period: k, Planned: planned.Epsilon,
					Spent: spent, Total: total, Remaining: req.Policy.Epsilon - spent, Policy: req.Policy}
			}
		}
		data, err := json.MarshalIndent(rec, "", "  ")
		return append(data, '\n'), err
	})
	switch {
	case errors.Is(err, errAlreadySpent):
		if !samePlan(*existing, req) {
			return Record{}, fmt.Errorf("%s: run %s: %w (record %d: %d events by %s; this run plans %d by %s): use a new run id",
				req.Dataset, req.RunID, ErrRunReused, existing.Seq, len(existing.Events), existing.Accountant, len(req.Events), req.Accountant)
		}
		return *existing, nil
	case errors.Is(err, dataset.ErrChainBroken):
		return Record{}, fmt.Errorf("budget ledger of %s: %w: %w", req.Dataset, ErrTampered, err)
	case err != nil:
		return Record{}, err
	}
	failpoint.Inject("budget:after-spend")
	return rec, nil
}

// errAlreadySpent stops an append when the run already has a record.
var errAlreadySpent = errors.New("run already spent")

// samePlan reports whether a request plans exactly the releases of the
// record of its run id: the same accountant and the same events, notes
// included, in the same order. Records hold events as JSON, whose floats
// read back exactly. The same id at another logical date is another
// run over other data.
func samePlan(r Record, req Request) bool {
	same := r.Accountant == req.Accountant && slices.Equal(r.Events, req.Events) &&
		r.LogicalDate == req.LogicalDate.UTC().Format(time.DateOnly) && r.Config == req.Config
	if len(r.Periods) > 0 { // a wider window reads data it was not charged for
		periods, _ := PeriodKeys(req.Policy.Period, req.LogicalDate, req.WindowDays)
		same = same && slices.Equal(r.Periods, periods)
	}
	return same
}

// Status summarizes the spend of one period of a dataset.
type Status struct {
	Dataset   string   `json:"dataset"`
	Period    string   `json:"period"`
	Policy    *Policy  `json:"policy,omitempty"`
	Spent     float64  `json:"epsilon_spent"`
	Delta     float64  `json:"delta"`
	Remaining *float64 `json:"epsilon_remaining,omitempty"`
	Runs      []Record `json:"runs"`
	// Records counts the dataset's records in every period: 0 says that
	// nothing was ever recorded under this identity.
	Records int `json:"records"`
	// Periods is the spend of every period a record charges, oldest
	// first, composed as Spent is.
	Periods []PeriodStatus `json:"periods"`
}

// PeriodStatus is the spend of one budget period.
type PeriodStatus struct {
	Period    string   `json:"period"`
	Spent     float64  `json:"epsilon_spent"`
	Delta     float64  `json:"delta"`
	Remaining *float64 `json:"epsilon_remaining,omitempty"`
	Runs      int      `json:"runs"`
}

// Status returns what was spent in the period of day at the policy's δ, or
// without a policy, everything spent, by basic composition (Σε at Σδ).
func (l *Ledger) Status(ctx context.Context, name string, policy *Policy, day time.Time) (Status, error) {
	records, err := l.Records(ctx, name)
	if err != nil {
		return Status{}, err
	}
	periodName := "total"
	if policy != nil {
		if err := policy.Validate(); err != nil {
			return Status{}, err
		}
		periodName = policy.Period
	}
	period, err := PeriodKey(periodName, day)
	if err != nil {
		return Status{}, err
	}
	st := Status{Dataset: name, Period: period, Policy: policy, Runs: []Record{}, Records: len(records)}
	for _, r := range records {
		if period == "total" || slices.Contains(r.keys(periodName), period) {
			st.Runs = append(st.Runs, r)
		}
	}
	if st.Spent, st.Delta, st.Remaining, err = compose(st.Runs, policy); err != nil {
		return Status{}, err
	}
	// Every period: records of the period key for the policy's period
	// (all in one "total" without a policy).
	byPeriod := map[string][]Record{}
	for _, r := range records {
		keys := r.keys(periodName)
		if period == "total" {
			keys = []string{"total"}
		}
		for _, k := range keys {
			byPeriod[k] = append(byPeriod[k], r)
		}
	}
	st.Periods = []PeriodStatus{}
	for _, k := range slices.Sorted(maps.Keys(byPeriod)) {
		ps := PeriodStatus{Period: k, Runs: len(byPeriod[k])}
		if ps.Spent, ps.Delta, ps.Remaining, err = compose(byPeriod[k], policy); err != nil {
			return Status{}, err
		}
		st.Periods = append(st.Periods, ps)
	}
	return st, nil
}

// compose returns what records spend together: at the policy's δ (RDP or
// basic composition, as the ledger checks) with what remains, or without a
// policy by basic composition (Σε at Σδ).
func compose(records []Record, policy *Policy) (eps, delta float64, remaining *float64, err error) {
	if policy == nil {
		for _, r := range records {
			eps += r.Epsilon
			delta += r.Delta
		}
		return eps, delta, nil, nil
	}
	if eps, err = periodSpent(records, policy.Delta); err != nil {
		return 0, 0, nil, err
	}
	rem := policy.Epsilon - eps
	return eps, policy.Delta, &rem, nil
}
