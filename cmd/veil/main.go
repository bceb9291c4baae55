// Command veil is the batch pipeline for privacy-compliant personalization.
// main only wires: it builds the root command, makes a signal-aware context
// and maps errors to exit codes (internal/exitcode).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veil-privacy/veil/internal/exitcode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	err := execute(ctx, env, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "veil: %s\n", oneLine(err))
	}
	os.Exit(exitcode.Classify(err).Code())
}
