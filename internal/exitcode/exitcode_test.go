package exitcode_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/pseudonym"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

var (
	errLocked = exitcode.Sentinel(exitcode.Locked, "another run holds the lock")
	errSpec   = exitcode.Sentinel(exitcode.Invalid, "invalid pipeline spec")
)

// budgetError is a refusal whose text says nothing of an exhausted budget:
// only its cause does.
type budgetError struct{ dataset string }

func (e *budgetError) Error() string { return "ledger of " + e.dataset + " refuses the charge" }
func (e *budgetError) Unwrap() error { return budget.ErrExhausted }

// twice wraps err twice, the way callers add context on the way up.
func twice(err error) error {
	return fmt.Errorf("step cohorts: %w", fmt.Errorf("spending: %w", err))
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want exitcode.Class
		code int
	}{
		{"nil", nil, exitcode.OK, 0},
		{"plain", errors.New("disk full"), exitcode.Failure, 1},
		{"unknown sentinel twice", twice(dataset.ErrNotExist), exitcode.Failure, 1},
		{"canceled", twice(context.Canceled), exitcode.Canceled, 1},
		{"deadline", twice(context.DeadlineExceeded), exitcode.Canceled, 1},
		{"schema", twice(dataset.ErrSchema), exitcode.BadInput, 1},
		{"not parquet", twice(dataset.ErrNotParquet), exitcode.BadInput, 1},
		{"format", twice(ingest.ErrFormat), exitcode.BadInput, 1},
		{"checkpoint", twice(mf.ErrCheckpoint), exitcode.BadInput, 1},
		{"usage mark", twice(exitcode.Usage(errors.New("--config is required"))), exitcode.Invalid, 2},
		{"usage mark of a refusal", exitcode.Usage(budget.ErrExhausted), exitcode.Invalid, 2},
		{"classed sentinel", twice(errSpec), exitcode.Invalid, 2},
		{"segment config", twice(segment.ErrConfig), exitcode.Invalid, 2},
		{"train config", twice(mf.ErrConfig), exitcode.Invalid, 2},
		{"privacy policy", twice(privacy.ErrPolicy), exitcode.Invalid, 2},
		{"budget policy", twice(budget.ErrPolicy), exitcode.Invalid, 2},
		{"key", twice(pseudonym.ErrKey), exitcode.Invalid, 2},
		{"yaml", twice(strictyaml.ErrInvalid), exitcode.Invalid, 2},
		{"accountant", twice(accountant.ErrParam), exitcode.Invalid, 2},
		{"unreachable", twice(accountant.ErrUnreachable), exitcode.Invalid, 2},
		{"bad url", twice(dataset.ErrBadURL), exitcode.Invalid, 2},
		{"bad key", twice(dataset.ErrBadKey), exitcode.Invalid, 2},
		{"credentials", twice(dataset.ErrCredentials), exitcode.Invalid, 2},
		{"denied", twice(dataset.ErrAccessDenied), exitcode.Invalid, 2},
		{"no bucket", twice(dataset.ErrNoBucket), exitcode.Invalid, 2},
		{"insecure", twice(dataset.ErrInsecure), exitcode.Invalid, 2},
		{"not catalog", twice(release.ErrNotCatalog), exitcode.Invalid, 2},
		{"exhausted", twice(budget.ErrExhausted), exitcode.Refused, 3},
		{"exhausted in other words", twice(&budgetError{"shop"}), exitcode.Refused, 3},
		{"exhausted as cause", twice(fmt.Errorf("%w: %w", errSpec, budget.ErrExhausted)), exitcode.Refused, 3},
		{"pii", twice(privacy.ErrPII), exitcode.Refused, 3},
		{"refused", twice(privacy.ErrRefused), exitcode.Refused, 3},
		// A failed privacy audit refuses the release: a retry would rerun
		// the randomized test until it passes.
		{"white-box audit fault", twice(audit.ErrFault), exitcode.Refused, 3},
		{"privacy audit violation", twice(mf.ErrAuditViolation), exitcode.Refused, 3},
		{"locked", twice(errLocked), exitcode.Locked, 4},
		{"joined", errors.Join(errors.New("closing"), twice(privacy.ErrPII)), exitcode.Refused, 3},
		{"refusal canceled", errors.Join(context.Canceled, privacy.ErrRefused), exitcode.Refused, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exitcode.Classify(tc.err)
			if got != tc.want || got.Code() != tc.code {
				t.Errorf("Classify(%v) = %v (exit %d), want %v (exit %d)", tc.err, got, got.Code(), tc.want, tc.code)
			}
			if got.Retryable() != (tc.want == exitcode.Failure) {
				t.Errorf("%v: Retryable() = %v", got, got.Retryable())
			}
		})
	}
}

// TestSentinel checks that a classed sentinel is an ordinary sentinel to
// everyone else: its own text, found by errors.Is, and not equal to
// another one of the same text.
func TestSentinel(t *testing.T) {
	err := twice(errLocked)
	if !errors.Is(err, errLocked) || errors.Is(err, exitcode.Sentinel(exitcode.Locked, "another run holds the lock")) {
		t.Errorf("errors.Is on %v: want the sentinel itself, not its twin", err)
	}
	if errLocked.Error() != "another run holds the lock" {
		t.Errorf("text %q", errLocked.Error())
	}
	if u := exitcode.Usage(errors.New("bad flag")); u.Error() != "bad flag" {
		t.Errorf("Usage changed the text: %q", u.Error())
	}
	if exitcode.Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
}

// TestCausesKept checks that the wraps of veil's loaders keep the cause
// for errors.Is beside their sentinel (fmt.Errorf("%w: %w", ...)), and
// still classify by the sentinel.
func TestCausesKept(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, segErr := segment.LoadConfig(missing)
	_, trainErr := train.LoadJobConfig(missing)
	_, keyErr := pseudonym.LoadKeyFile(missing)
	_, urlErr := open.Store(context.Background(), "s3://bucket/%zz", dataset.URLOptions{})
	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		cause    error
	}{
		{"segment config", segErr, segment.ErrConfig, fs.ErrNotExist},
		{"train config", trainErr, mf.ErrConfig, fs.ErrNotExist},
		{"key file", keyErr, pseudonym.ErrKey, fs.ErrNotExist},
	} {
		if !errors.Is(tc.err, tc.sentinel) || !errors.Is(tc.err, tc.cause) {
			t.Errorf("%s: %v: want both %v and %v", tc.name, tc.err, tc.sentinel, tc.cause)
		}
		if c := exitcode.Classify(tc.err); c != exitcode.Invalid {
			t.Errorf("%s: class %v, want invalid", tc.name, c)
		}
	}
	var ue *url.Error
	if !errors.Is(urlErr, dataset.ErrBadURL) || !errors.As(urlErr, &ue) {
		t.Errorf("bad URL: %v: want dataset.ErrBadURL and its *url.Error", urlErr)
	}
}
