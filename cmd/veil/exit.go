package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train/mf"
)

// usagef marks an error as the caller's mistake (exit code 2).
func usagef(err error) error { return exitcode.Usage(err) }

// oneLine flattens an error (errors.Join puts one per line) into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// usageIfConfig makes a clustering configuration error a usage error; bad
// data stays a runtime failure, and a refusal wrapped in a configuration
// error stays a refusal (exit 3).
func usageIfConfig(err error) error {
	if (errors.Is(err, segment.ErrConfig) || errors.Is(err, mf.ErrConfig)) && exitcode.Classify(err) != exitcode.Refused {
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
