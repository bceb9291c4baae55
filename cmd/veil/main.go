// Command veil is the batch pipeline for privacy-compliant personalization.
// main only wires: it builds the root command, makes a signal-aware context
// and maps errors to exit codes (internal/exitcode).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/veil-privacy/veil/internal/exitcode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	stopProfile := startCPUProfile(os.Getenv("VEIL_CPUPROFILE"))
	err := execute(ctx, env, os.Args[1:])
	stopProfile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "veil: %s\n", oneLine(err))
	}
	os.Exit(exitcode.Classify(err).Code())
}

// startCPUProfile writes a CPU profile of the whole command to path when it
// is set (VEIL_CPUPROFILE, for operators measuring a job: go tool pprof
// reads it). A profile that cannot be started is reported and skipped: it
// never fails the job.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "veil: VEIL_CPUPROFILE %s: %v (no profile)\n", path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
