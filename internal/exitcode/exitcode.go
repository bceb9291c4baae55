// Package exitcode sorts errors into the classes every veil command, the
// pipeline runner and the Beam drivers share: the class decides the exit
// code (0 ok or no-op, 1 runtime failure, 2 usage or spec error, 3 refused
// by policy, 4 lock held) and whether a failed step is retried.
//
// Classify looks at the sentinels of veil's packages with errors.Is, so
// every wrap on the way up must keep its cause (%w, also twice:
// fmt.Errorf("%w: %w", ErrConfig, err)). Packages this one cannot import
// (jobs imports it) declare their sentinels with Sentinel, which carries
// the class; a command marks the caller's mistakes with Usage.
package exitcode

import (
	"context"
	"errors"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/pseudonym"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train/mf"
)

// Class is what kind of outcome an error is.
type Class int

const (
	// OK is no error: success, or a no-op rerun (exit 0).
	OK Class = iota
	// Failure is a runtime failure (I/O, a timeout): a retry may pass
	// (exit 1).
	Failure
	// BadInput is input that does not parse or match its contract, or a
	// broken checkpoint: a retry would fail again (exit 1).
	BadInput
	// Canceled is a run whose context ended (exit 1).
	Canceled
	// Invalid is invalid usage, spec, policy or configuration (exit 2).
	Invalid
	// Refused is a refusal by policy: missing consent, PII found, privacy
	// budget exhausted (exit 3).
	Refused
	// Locked is another run holding the lock of the job and logical date
	// (exit 4).
	Locked
)

// Code is the exit code of the class.
func (c Class) Code() int {
	switch c {
	case OK:
		return 0
	case Invalid:
		return 2
	case Refused:
		return 3
	case Locked:
		return 4
	}
	return 1
}

// Retryable reports whether a step that failed so may pass on a retry:
// runtime failures only, not refusals, usage errors, bad input or
// cancellation.
func (c Class) Retryable() bool { return c == Failure }

func (c Class) String() string {
	return [...]string{"ok", "failure", "bad input", "canceled", "invalid", "refused", "locked"}[c]
}

// Classify returns the class of err. The first rule that matches decides,
// in this order: the caller's mistakes (Usage) and invalid locations or
// credentials, a held lock, refusals, invalid specs and policies,
// cancellation, bad input; anything else is a runtime failure.
func Classify(err error) Class {
	is := func(c Class, marked bool) bool { return errors.Is(err, kind{c, marked}) }
	switch {
	case err == nil:
		return OK
	case is(Invalid, true),
		errors.Is(err, dataset.ErrBadURL),
		errors.Is(err, dataset.ErrBadKey),
		errors.Is(err, dataset.ErrCredentials),
		errors.Is(err, dataset.ErrAccessDenied),
		errors.Is(err, dataset.ErrNoBucket),
		errors.Is(err, dataset.ErrInsecure),
		errors.Is(err, release.ErrNotCatalog):
		return Invalid
	case is(Locked, false):
		return Locked
	case errors.Is(err, budget.ErrExhausted), errors.Is(err, privacy.ErrPII), errors.Is(err, privacy.ErrRefused), is(Refused, false),
		// A failed privacy audit refuses the release; a retry would
		// rerun the randomized test until it passed.
		errors.Is(err, audit.ErrFault), errors.Is(err, mf.ErrAuditViolation):
		return Refused
	case is(Invalid, false),
		errors.Is(err, privacy.ErrPolicy), errors.Is(err, pseudonym.ErrKey), errors.Is(err, strictyaml.ErrInvalid),
		errors.Is(err, segment.ErrConfig), errors.Is(err, mf.ErrConfig),
		errors.Is(err, budget.ErrPolicy), errors.Is(err, accountant.ErrParam), errors.Is(err, accountant.ErrUnreachable):
		return Invalid
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Canceled
	case errors.Is(err, ingest.ErrFormat), errors.Is(err, dataset.ErrSchema), errors.Is(err, dataset.ErrNotParquet), errors.Is(err, mf.ErrCheckpoint):
		return BadInput
	}
	return Failure
}

// classed is an error that carries its class: a sentinel (wrapped nil)
// or a marked error.
type classed struct {
	class   Class
	msg     string
	wrapped error
}

func (e *classed) Error() string {
	if e.wrapped != nil {
		return e.wrapped.Error()
	}
	return e.msg
}

func (e *classed) Unwrap() error { return e.wrapped }

// Is makes errors.Is(err, kind{...}) find a classed error anywhere in
// err's tree, errors.Join included.
func (e *classed) Is(target error) bool {
	k, ok := target.(kind)
	return ok && k.class == e.class && k.marked == (e.wrapped != nil)
}

// kind is the target Classify asks errors.Is for: a sentinel of a class,
// or (marked) an error Usage marked.
type kind struct {
	class  Class
	marked bool
}

func (k kind) Error() string { return k.class.String() }

// Sentinel returns a new sentinel error of a class, for a package's
// errors.go: errors.Is finds it as any sentinel, and Classify sorts it.
func Sentinel(c Class, msg string) error { return &classed{class: c, msg: msg} }

// Usage marks err as the caller's mistake (class Invalid, exit 2) whatever
// it wraps; its text is err's. Usage(nil) is nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &classed{class: Invalid, wrapped: err}
}
