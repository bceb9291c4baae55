package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train/mf"
)

// run executes veil with args the way main does and returns the exit code,
// stdout and the one-line error.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: io.Discard, Getenv: os.Getenv, Logger: slog.New(slog.DiscardHandler)}
	err := execute(context.Background(), env, args)
	msg := ""
	if err != nil {
		msg = oneLine(err)
	}
	return exitcode.Classify(err).Code(), stdout.String(), msg
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.parquet"), []byte("not parquet at all"), 0o644)
	tests := []struct {
		args  []string
		code  int
		words []string
	}{
		{[]string{"version"}, 0, nil},
		{[]string{"no-such-command"}, 2, []string{"unknown command"}},
		{[]string{"version", "--bogus"}, 2, []string{"bogus"}},
		{[]string{"generate"}, 2, []string{"out"}},
		{[]string{"generate", "--out", dir + "/g", "--end", "tomorrow"}, 2, []string{"--end"}},
		{[]string{"generate", "--out", dir + "/g", "--subjects", "0"}, 2, []string{"subjects"}},
		{[]string{"generate", "--out", "ftp://x/y"}, 2, []string{"ftp"}},
		{[]string{"datasets", "inspect"}, 2, []string{"arg"}},
		{[]string{"datasets", "inspect", "gopher://x"}, 2, []string{"gopher"}},
		{[]string{"datasets", "inspect", "s3://b/events?endpoint=http://10.20.30.40:9000"}, 2, []string{"plain HTTP", "10.20.30.40"}},
		{[]string{"datasets", "inspect", "s3://b/events?sse=rot13"}, 2, []string{"rot13"}},
		{[]string{"datasets", "inspect", dir + "/notes.parquet"}, 1, []string{"notes.parquet", "not a readable Parquet file"}},
		{[]string{"datasets", "inspect", dir + "/absent"}, 1, []string{"absent"}},
		{[]string{"--log-format", "xml", "version"}, 2, []string{"log-format"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, msg := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (%s)", code, tc.code, msg)
			}
			for _, w := range tc.words {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
		})
	}
	// A refused generate leaves nothing behind.
	if _, err := os.Stat(filepath.Join(dir, "g")); !os.IsNotExist(err) {
		t.Errorf("a failed generate left %s/g", dir)
	}
}

func TestGenerateAndInspect(t *testing.T) {
	dir := t.TempDir()
	code, out, msg := run(t, "generate", "--out", dir, "--subjects", "300", "--items", "100", "--days", "5", "--json")
	if code != 0 {
		t.Fatalf("generate: %d %s", code, msg)
	}
	var gen struct{ Events int64 }
	if err := json.Unmarshal([]byte(out), &gen); err != nil || gen.Events == 0 {
		t.Fatalf("generate printed %q (%v)", out, err)
	}
	code, out, msg = run(t, "datasets", "inspect", "--json", "file://"+dir+"/events")
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, msg)
	}
	var in dataset.Inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if in.Rows != gen.Events || in.Contract != "events v1" || len(in.Files) != 5 || in.TimeRange == nil || in.Committed == nil {
		t.Errorf("inspection = %+v", in)
	}
	if d := in.TimeRange.Max.Sub(in.TimeRange.Min).Hours(); d > 5*24 || d < 3*24 {
		t.Errorf("time range %s .. %s for 5 days", in.TimeRange.Min, in.TimeRange.Max)
	}
	code, out, _ = run(t, "datasets", "inspect", dir+"/consent")
	if code != 0 || !strings.Contains(out, "consent v1") || !strings.Contains(out, "recorded_at") {
		t.Errorf("inspect consent: %d\n%s", code, out)
	}
}

// veil demo runs configs/nightly.yaml as it is, from the folder that holds
// veil-demo: veil run of that spec for the same date afterwards is a no-op.
func TestDemo(t *testing.T) {
	nightly, _ := filepath.Abs("../../configs/nightly.yaml")
	t.Chdir(t.TempDir())
	dir, _ := filepath.Abs("veil-demo")
	code, out, msg := run(t, "demo", "--subjects", "400", "--days", "3")
	if code != 0 {
		t.Fatalf("demo: %d %s", code, msg)
	}
	code, again, msg := run(t, "run", nightly, "--logical-date", "2026-11-27")
	if code != 0 || !strings.Contains(again, "nothing to do") {
		t.Errorf("veil run configs/nightly.yaml after the demo: %d %s\n%s", code, msg, again)
	}
	for _, want := range []string{"event summary", "purchase", "DP k-means", "the ledger charged", "steward report", "set by the data steward's policy"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The demo's training is DP: its evaluation on the private holdout is
	// in the steward report, not on stdout.
	if strings.Contains(out, "popularity") {
		t.Errorf("demo output holds the DP model's evaluation:\n%s", out)
	}
	s, _ := dataset.NewFileStore(dir)
	if _, err := dataset.VerifyManifest(context.Background(), s, "out/event-summary"); err != nil {
		t.Error(err)
	}
	// Every lineage event of the three steps (segmentation, DP k-means,
	// training) validates.
	v, err := lineagetest.New(filepath.Dir(filepath.Dir(nightly)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for info, err := range s.List(context.Background(), "state/lineage/") {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := dataset.ReadAll(context.Background(), s, info.Key)
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			if err := v.Validate(line); err != nil {
				t.Errorf("%s: %v", info.Key, err)
			}
			n++
		}
	}
	if n != 8 {
		t.Errorf("%d lineage events, want 8 (pipeline and three steps, START and COMPLETE)", n)
	}
}

// TestUsageIfConfigKeepsRefusals: a configuration error is the caller's
// mistake (exit 2), unless it wraps a refusal, which stays exit 3.
func TestUsageIfConfigKeepsRefusals(t *testing.T) {
	cfg := fmt.Errorf("%w: bad k", segment.ErrConfig)
	if got := exitcode.Classify(usageIfConfig(cfg)).Code(); got != 2 {
		t.Errorf("configuration error: exit %d, want 2", got)
	}
	refused := fmt.Errorf("%w: %w", mf.ErrConfig, budget.ErrExhausted)
	if got := exitcode.Classify(usageIfConfig(refused)).Code(); got != 3 {
		t.Errorf("refusal inside a configuration error: exit %d, want 3", got)
	}
}

// TestStartCPUProfile: VEIL_CPUPROFILE writes a profile that pprof reads
// (gzip-compressed protobuf), and an unwritable path is skipped, not fatal.
func TestStartCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop := startCPUProfile(path)
	x := 0
	for i := range 1 << 20 {
		x += i
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %d bytes, %v; want a gzip-compressed profile", path, len(b), err)
	}
	startCPUProfile(filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof"))() // no panic
	startCPUProfile("")()
}
