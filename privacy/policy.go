package privacy

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/privacy/budget"
)

// The purposes veil knows. A job declares the ones it needs.
const (
	Analytics       = "analytics"
	Segmentation    = "segmentation"
	Personalization = "personalization"
	Marketing       = "marketing"
)

// KnownPurposes lists the purposes in a fixed order; a purpose's index is
// its position in consent states.
var KnownPurposes = []string{Analytics, Segmentation, Personalization, Marketing}

func purposeIndex(p string) int { return slices.Index(KnownPurposes, p) }

// Policy is the privacy policy file (configs/policy.yaml).
type Policy struct {
	Version  int                      `yaml:"version"`
	TCF      TCFPolicy                `yaml:"tcf"`
	Purposes map[string]PurposePolicy `yaml:"purposes"`
	OptOut   OptOutPolicy             `yaml:"opt_out"`
	PII      PIIPolicy                `yaml:"pii"`
	// Roles says who may read and write which part of the store, by key
	// prefix from the store's root (a * matches within a key).
	Roles map[string]Role `yaml:"roles"`
	// Budgets are the privacy budgets the data steward sets, keyed by a
	// population's ledger identity or by a table's URL or path (resolved
	// to its identity with budget.Identity, so that any spelling of the
	// table, its partitions and the tables prepared from it match). When
	// the policy declares budgets, every DP release is charged to its
	// table's budget here, a job may only restate it, and a table without
	// one is refused (privacy/release). Without budgets a job's own
	// budget section decides, and the run says so.
	Budgets map[string]BudgetPolicy `yaml:"budgets"`
	// Releases are the data steward's switches for releases without
	// differential privacy.
	Releases ReleasePolicy `yaml:"releases"`
}

// BudgetPolicy is the budget of one population: at most Epsilon at Delta
// per Period, recorded in the ledger at Ledger.
type BudgetPolicy struct {
	Ledger        string `yaml:"ledger"` // URL or path of the budget ledger
	budget.Policy `yaml:",inline"`
}

// ReleasePolicy holds the data steward's switches for releases that are
// not differentially private. The zero value refuses them all.
type ReleasePolicy struct {
	// NonPrivate is "allow" to let a training job release a model trained
	// without DP (model.epsilon .inf, --epsilon inf) on the shop's
	// subjects; "deny" or empty refuses such a run (exit 3) before it
	// reads any data.
	NonPrivate string `yaml:"non_private"`
}

// AllowNonPrivate returns nil when the policy allows a release without
// differential privacy (what names it), else an error wrapping
// ErrRefused.
func (p *Policy) AllowNonPrivate(what string) error {
	if p.Releases.NonPrivate == "allow" {
		return nil
	}
	return fmt.Errorf("%w: %s is a release without differential privacy; the data steward must allow it in the policy file (releases: {non_private: allow})", ErrRefused, what)
}

// Role is a set of people or services and the keys they may touch.
type Role struct {
	Description string   `yaml:"description"`
	Read        []string `yaml:"read"`
	Write       []string `yaml:"write"`
}

// DefaultRoles are the built-in roles, for the layout of configs/: inputs
// under shop/, outputs under out/, run state (locks, lineage, audit) under
// state/, the budget ledger under ledger/. Marketing reads every cohort
// export (out/cohorts, out/cohorts-dp, ...) with the plots its datasheet
// embeds.
func DefaultRoles() map[string]Role {
	return map[string]Role{
		"scheduler": {Description: "the service account veil run uses: reads inputs, writes outputs, state and the ledger",
			Read:  []string{"raw/", "shop/", "out/", "state/", "ledger/", "policy.yaml"},
			Write: []string{"shop/events/", "out/", "state/", "ledger/"}},
		"marketing": {Description: "reads committed cohort exports, nothing else",
			Read: []string{"out/cohorts*/assignments-*", "out/cohorts*/profiles-*", "out/cohorts*/datasheet-*", "out/cohorts*/cohort_sizes-*",
				"out/cohorts*/cohort_map-*", "out/cohorts*/monitoring-*", "out/cohorts*/_manifest.json"}},
		"steward": {Description: "reviews lineage, the audit log, the budget ledger, steward reports, model cards, datasheets and manifests",
			Read: []string{"policy.yaml", "state/lineage/", "state/audit/", "state/steward/", "ledger/", "out/_steward/", "out/*/model_card-*", "out/*/datasheet-*", "out/*/_manifest.json"}},
		"engineer": {Description: "tunes models: reads released factors and public model cards, never subject-level data or steward reports",
			Read: []string{"out/models/*/item_factors-*", "out/models/*/model_card-*"}},
	}
}

// TCFPolicy says how TC strings are read.
type TCFPolicy struct {
	// VendorID is this shop's id in the IAB Global Vendor List: a TC
	// string grants a purpose only if it also gives this vendor consent.
	VendorID int `yaml:"vendor_id"`
}

// PurposePolicy is what one purpose allows.
type PurposePolicy struct {
	TCFPurposes   []int    `yaml:"tcf_purposes"`   // IAB TCF v2.2 purposes (1-11) that must all be consented
	Columns       []string `yaml:"columns"`        // event columns this purpose may read
	RetentionDays int      `yaml:"retention_days"` // events older than this (from the logical date) are dropped
	Description   string   `yaml:"description"`
}

// OptOutPolicy says what an opt-out of sale or sharing (a GPC signal, a
// CCPA "do not sell or share") denies.
type OptOutPolicy struct {
	Sources  []string `yaml:"sources"`  // consent sources that are opt-outs when denied or withdrawn
	Purposes []string `yaml:"purposes"` // purposes an opt-out denies, whatever else the subject said
}

// PIIPolicy tunes the PII guard.
type PIIPolicy struct {
	AllowColumns []string `yaml:"allow_columns"` // columns exempt from the scan
	SampleRows   int      `yaml:"sample_rows"`   // rows read per large file (all rows of smaller files)
}

// DefaultPolicy returns the policy veil uses when none is given: the one in
// configs/policy.yaml without its budgets (those are the demo's), so jobs
// under it state their own budget.
func DefaultPolicy() *Policy {
	all := []string{"subject_id", "event_time", "event_type", "item_id", "category", "quantity", "value", "region"}
	return &Policy{
		Version: 1,
		TCF:     TCFPolicy{VendorID: 1},
		Purposes: map[string]PurposePolicy{
			Analytics:       {TCFPurposes: []int{8, 9}, Columns: all, RetentionDays: 395, Description: "measure and understand how the shop is used"},
			Segmentation:    {TCFPurposes: []int{3, 5}, Columns: all, RetentionDays: 365, Description: "build profiles and cohorts"},
			Personalization: {TCFPurposes: []int{6}, Columns: []string{"subject_id", "event_time", "event_type", "item_id", "category", "quantity"}, RetentionDays: 365, Description: "recommend products"},
			Marketing:       {TCFPurposes: []int{4}, Columns: []string{"subject_id", "event_time", "event_type", "category", "value", "region"}, RetentionDays: 180, Description: "use cohorts in campaigns"},
		},
		OptOut:   OptOutPolicy{Sources: []string{"gpc", "ccpa"}, Purposes: []string{Marketing}},
		PII:      PIIPolicy{AllowColumns: []string{}, SampleRows: 20000},
		Roles:    DefaultRoles(),
		Releases: ReleasePolicy{NonPrivate: "deny"},
	}
}

// LoadPolicy reads and validates a policy file. Errors name the file and,
// for YAML problems, the line.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading policy: %w", ErrPolicy, err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy decodes and validates policy YAML; name is used in errors.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	var p Policy
	if err := strictyaml.Decode(name, data, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if p.Roles == nil {
		p.Roles = DefaultRoles()
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &p, nil
}

// Validate reports whether the policy is complete and consistent.
func (p *Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPolicy, fmt.Sprintf(format, args...))
	}
	if p.Version != 1 {
		return bad("version %d is not supported (want 1)", p.Version)
	}
	if p.TCF.VendorID < 1 || p.TCF.VendorID > 65535 {
		return bad("tcf.vendor_id %d must be in [1, 65535]", p.TCF.VendorID)
	}
	if len(p.Purposes) == 0 {
		return bad("no purposes")
	}
	names := make([]string, 0, len(p.Purposes))
	for name := range p.Purposes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pp := p.Purposes[name]
		if purposeIndex(name) < 0 {
			return bad("unknown purpose %q (want one of %s)", name, strings.Join(KnownPurposes, ", "))
		}
		if len(pp.TCFPurposes) == 0 {
			return bad("purpose %s maps to no TCF purpose", name)
		}
		for _, t := range pp.TCFPurposes {
			if t < 1 || t > 11 {
				return bad("purpose %s: TCF purpose %d is not in 1..11 (TCF v2.2)", name, t)
			}
		}
		for _, c := range pp.Columns {
			if _, ok := dataset.EventsContract.Column(c); !ok {
				return bad("purpose %s: column %q is not an events column", name, c)
			}
		}
		for _, c := range []string{"subject_id", "event_time"} {
			if !slices.Contains(pp.Columns, c) {
				return bad("purpose %s must allow column %s (consent and retention need it)", name, c)
			}
		}
		if pp.RetentionDays < 1 {
			return bad("purpose %s: retention_days %d must be at least 1", name, pp.RetentionDays)
		}
	}
	for _, name := range p.OptOut.Purposes {
		if _, ok := p.Purposes[name]; !ok {
			return bad("opt_out.purposes names %q, which the policy does not define", name)
		}
	}
	switch p.Releases.NonPrivate {
	case "", "deny", "allow":
	default:
		return bad("releases.non_private %q: want allow or deny", p.Releases.NonPrivate)
	}
	if p.PII.SampleRows < 0 {
		return bad("pii.sample_rows %d is negative", p.PII.SampleRows)
	}
	for _, key := range slices.Sorted(maps.Keys(p.Budgets)) {
		b := p.Budgets[key]
		if strings.TrimSpace(key) == "" {
			return bad("budgets: an empty dataset key")
		}
		if b.Ledger == "" {
			return bad("budgets.%s: no ledger", key)
		}
		if err := b.Policy.Validate(); err != nil {
			return bad("budgets.%s: %v", key, err)
		}
	}
	for name, r := range p.Roles {
		if name == "" || len(r.Read)+len(r.Write) == 0 {
			return bad("role %q grants nothing", name)
		}
		for _, k := range append(slices.Clone(r.Read), r.Write...) {
			if k == "" || strings.HasPrefix(k, "/") || strings.Contains(k, "..") {
				return bad("role %s: prefix %q must be a relative key prefix", name, k)
			}
		}
	}
	return nil
}

// CheckPurposes validates a job's declared purposes against the policy.
func (p *Policy) CheckPurposes(purposes []string) error {
	if len(purposes) == 0 {
		return fmt.Errorf("%w: a job must declare at least one purpose", ErrPolicy)
	}
	for _, name := range purposes {
		if _, ok := p.Purposes[name]; !ok {
			defined := make([]string, 0, len(p.Purposes))
			for n := range p.Purposes {
				defined = append(defined, n)
			}
			sort.Strings(defined)
			return fmt.Errorf("%w: unknown purpose %q (the policy defines %s)", ErrPolicy, name, strings.Join(defined, ", "))
		}
	}
	return nil
}

// AllowedColumns returns the event columns a job with these purposes may
// read: those that at least one of its purposes allows (each column must be
// justified by a declared purpose; the subject must consent to all of them).
func (p *Policy) AllowedColumns(purposes []string) []string {
	var cols []string
	for _, c := range dataset.EventsContract.Columns {
		for _, name := range purposes {
			if slices.Contains(p.Purposes[name].Columns, c.Name) {
				cols = append(cols, c.Name)
				break
			}
		}
	}
	return cols
}

// CheckColumns refuses columns that the purposes do not allow.
func (p *Policy) CheckColumns(purposes, cols []string) error {
	allowed := p.AllowedColumns(purposes)
	for _, c := range cols {
		if !slices.Contains(allowed, c) {
			return fmt.Errorf("%w: column %q may not be read for purposes %s (allowed: %s)", ErrPolicy, c, strings.Join(purposes, ", "), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// RetentionDays is the strictest retention of the purposes.
func (p *Policy) RetentionDays(purposes []string) int {
	days := 0
	for _, name := range purposes {
		if d := p.Purposes[name].RetentionDays; days == 0 || d < days {
			days = d
		}
	}
	return days
}
