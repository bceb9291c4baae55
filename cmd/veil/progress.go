package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressOn reports whether to draw progress bars: --progress always, or
// auto when stderr is a terminal (schedulers get JSON logs and no bars).
func (e *Env) progressOn() bool {
	switch e.progress {
	case "always":
		return true
	case "auto":
		f, ok := e.Stderr.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}
	return false
}

// newBar returns a bar on stderr of max units (-1: unknown), or nil when
// progress is off. A nil bar is safe to use through the helpers below.
func (e *Env) newBar(max int64, description string, bytes bool) *progressbar.ProgressBar {
	if !e.progressOn() {
		return nil
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(e.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // redraw at most every 100 ms
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.Stderr) }),
	)
}

// barReader counts what r reads on the bar.
func barReader(r io.Reader, bar *progressbar.ProgressBar) io.Reader {
	if bar == nil {
		return r
	}
	rd := progressbar.NewReader(r, bar)
	return &rd
}

func barFinish(bar *progressbar.ProgressBar) {
	if bar != nil {
		bar.Finish()
	}
}
