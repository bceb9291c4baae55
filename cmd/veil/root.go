package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
)

// Version is veil's version, set at build time with
// -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

// Env is what commands take from the process: streams and environment.
// Tests build their own.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger // made from the global flags when nil

	logFormat, logLevel string
	progress            string // auto, always or never
	started             bool   // a command's own code ran: parsing is over
}

// execute runs veil with args. An error before the command's own code ran
// (unknown command, bad or missing flags, wrong arguments) is a usage error.
func execute(ctx context.Context, env *Env, args []string) error {
	cmd := newRootCmd(env)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err != nil && !env.started {
		return usagef(err)
	}
	return err
}

func (e *Env) urlOptions() dataset.URLOptions {
	o := dataset.URLOptionsFromEnv(e.Getenv)
	o.Log = e.logger()
	return o
}

func (e *Env) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := e.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := e.Stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		e.Logger = slog.New(slog.NewTextHandler(e.Stderr, opts))
	} else {
		e.Logger = slog.New(slog.NewJSONHandler(e.Stderr, opts))
	}
	return e.Logger
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "veil",
		Short: "veil: privacy-compliant personalization pipeline",
		Long: `veil reads consented, pseudonymized Parquet from object storage (local files
or S3), builds cohorts and trains recommendation factors under differential
privacy, and records lineage for governance.

Exit codes: 0 success or no-op, 1 runtime failure, 2 invalid usage, spec or
configuration, 3 refused by policy, 4 lock held by another run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch env.logFormat {
			case "auto", "json", "text":
			default:
				return usagef(fmt.Errorf("--log-format must be auto, json or text, not %q", env.logFormat))
			}
			switch env.progress {
			case "auto", "always", "never":
			default:
				return usagef(fmt.Errorf("--progress must be auto, always or never, not %q", env.progress))
			}
			return nil
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.PersistentFlags().StringVar(&env.logFormat, "log-format", "auto", "log format: auto (JSON unless stderr is a terminal), json or text")
	root.PersistentFlags().StringVar(&env.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&env.progress, "progress", "auto", "progress bars on stderr: auto (when it is a terminal), always or never")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usagef(err) })
	root.AddCommand(
		newVersionCmd(env),
		newGenerateCmd(env),
		newDatasetsCmd(env),
		newDemoCmd(env),
		newPrivacyCmd(env),
		newBudgetCmd(env),
		newPseudonymizeCmd(env),
		newSegmentCmd(env),
		newTrainCmd(env),
		newRunCmd(env),
		newAuditCmd(env),
		newLineageCmd(env),
		newCardCmd(env),
		newExportsCmd(env),
		newPolicyCmd(env),
		newReportCmd(env),
		newSubjectCmd(env),
		newGenDocsCmd(env),
	)
	return root
}

// runE wraps a command's function: from here on, errors are the command's
// own and keep their exit codes.
func runE(env *Env, fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		env.started = true
		return fn(cmd, args)
	}
}

// exactArgs wraps cobra's checks as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error { return usagef(cobra.ExactArgs(n)(cmd, args)) }
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print veil's version",
		Long:  "Print the version, the VCS revision when built from a checkout, and the Go version.",
		Args:  exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(env.Stdout, "veil %s\n", versionString())
			return err
		}),
	}
}
