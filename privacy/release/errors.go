package release

import (
	"errors"
	"fmt"

	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
)

var (
	// ErrNoBudget is returned when the steward's policy declares budgets
	// but none for the population a release reads: a refusal by policy
	// (exit 3).
	ErrNoBudget = fmt.Errorf("%w: the policy sets no privacy budget for the table", privacy.ErrRefused)

	// ErrBudgetConflict is returned when a job's budget section disagrees
	// with the steward's policy: another ledger, ε, δ or period, or a
	// budget.dataset that is not the table's identity. It is a usage error
	// (exit 2).
	ErrBudgetConflict = fmt.Errorf("%w: the job's budget is not the steward's", budget.ErrPolicy)
)

// ErrNotCatalog is returned for a job's catalog that is not the shop's
// public catalog: a table whose veil manifest does not declare the catalog
// contract, that holds subject ids, or that is (inside, or holds) a table
// of subjects' data. Its items and categories would be released as public
// without DP. It is a usage error (exit 2).
var ErrNotCatalog = errors.New("not a public catalog")
