// Command testsum reads `go test -json` events on stdin.
//
// Without flags it prints them for people as they come, like go test
// without -v: each package's closing line, build errors, and the whole
// output of every test that failed. With -summary it prints one closing
// line instead, counted over every test and subtest of the input:
//
//	123 passed, 0 failed, 4 skipped
//
// A package that fails without a failing test (a build error, a panic or
// timeout outside a test, a TestMain that exits non-zero) counts as one
// failed test. Lines that are not JSON are passed through as they are.
// scripts/test.sh tees every go test run (and a line per fuzz target) into
// one file and runs testsum -summary on it at the end.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is the part of a test2json event testsum reads.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Counts are the tests that passed, failed and were skipped.
type Counts struct{ Passed, Failed, Skipped int }

func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// tally reads events from r, writes them for people to w (nil: nothing),
// and returns the counts.
func tally(r io.Reader, w io.Writer) (Counts, error) {
	var c Counts
	out := map[string]*strings.Builder{} // package + test -> output so far
	testFailed := map[string]bool{}      // package -> a test failed
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			if w != nil {
				fmt.Fprintf(w, "%s\n", line)
			}
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output", "build-output":
			if ev.Test == "" {
				if w != nil && ev.Output != "PASS\n" && !strings.HasPrefix(ev.Output, "=== ") {
					io.WriteString(w, ev.Output)
				}
				continue
			}
			b := out[key]
			if b == nil {
				b = &strings.Builder{}
				out[key] = b
			}
			b.WriteString(ev.Output)
		case "pass", "fail", "skip":
			if ev.Test == "" {
				if ev.Action == "fail" && !testFailed[ev.Package] {
					c.Failed++ // the package failed outside its tests
				}
				continue
			}
			switch ev.Action {
			case "pass":
				c.Passed++
			case "skip":
				c.Skipped++
			case "fail":
				c.Failed++
				testFailed[ev.Package] = true
				if w != nil && out[key] != nil {
					io.WriteString(w, out[key].String())
				}
			}
			delete(out, key)
		}
	}
	return c, sc.Err()
}

func main() {
	summary := flag.Bool("summary", false, "print only the closing line: N passed, N failed, N skipped")
	flag.Parse()
	var w io.Writer = os.Stdout
	if *summary {
		w = nil
	}
	c, err := tally(os.Stdin, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
	if *summary {
		fmt.Println(c)
	}
}
