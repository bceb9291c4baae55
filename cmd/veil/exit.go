package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/pseudonym"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train/mf"
)

// Exit codes of every command (docs/scheduler.md, "Exit codes").
const (
	exitOK      = 0 // success, or a no-op rerun
	exitRuntime = 1 // I/O failure, corrupt input, divergence
	exitUsage   = 2 // invalid usage, spec, policy or configuration
	exitPolicy  = 3 // refused by policy
	exitLocked  = 4 // another run holds the lock
)

// usageError marks an error as the caller's mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue),
		errors.Is(err, dataset.ErrBadURL),
		errors.Is(err, dataset.ErrBadKey),
		errors.Is(err, dataset.ErrCredentials),
		errors.Is(err, dataset.ErrAccessDenied),
		errors.Is(err, dataset.ErrNoBucket),
		errors.Is(err, dataset.ErrInsecure),
		errors.Is(err, release.ErrNotCatalog):
		return exitUsage
	case errors.Is(err, jobs.ErrLocked):
		return exitLocked
	case errors.Is(err, budget.ErrExhausted), errors.Is(err, privacy.ErrPII), errors.Is(err, privacy.ErrRefused):
		return exitPolicy
	case errors.Is(err, privacy.ErrPolicy), errors.Is(err, pseudonym.ErrKey), errors.Is(err, strictyaml.ErrInvalid),
		errors.Is(err, jobs.ErrSpec), errors.Is(err, segment.ErrConfig), errors.Is(err, mf.ErrConfig):
		return exitUsage
	case errors.Is(err, budget.ErrPolicy), errors.Is(err, accountant.ErrParam), errors.Is(err, accountant.ErrUnreachable):
		return exitUsage
	}
	return exitRuntime
}

// oneLine flattens an error (errors.Join puts one per line) into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// usageIfConfig makes a clustering configuration error a usage error; bad
// data stays a runtime failure.
func usageIfConfig(err error) error {
	if errors.Is(err, segment.ErrConfig) || errors.Is(err, mf.ErrConfig) {
		return usagef(err)
	}
	return err
}

// jobArgs checks a job command's --config and --logical-date and parses the
// date; hint says what to use instead when they are missing.
func jobArgs(configFile, date, hint string) (time.Time, error) {
	if configFile == "" || date == "" {
		msg := "--config and --logical-date are required"
		if hint != "" {
			msg += " " + hint
		}
		return time.Time{}, usagef(errors.New(msg))
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return time.Time{}, usagef(fmt.Errorf("--logical-date %q is not a date (YYYY-MM-DD)", date))
	}
	return day, nil
}
