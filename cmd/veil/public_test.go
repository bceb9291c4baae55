package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

// dpTrainReport is the full report of a DP training run with exact
// figures that must never reach stdout.
func dpTrainReport() *train.Report {
	return &train.Report{RunID: "r", LogicalDate: "2026-11-27", Output: "out/models/dt=2026-11-27/run=r", Steward: "state/steward/train/dt=2026-11-27/run=r",
		Filter:   privacy.Report{RowsRead: 91234, RowsKept: 81234, RowsDropped: map[string]int64{"no_consent": 10000}},
		Subjects: 4321, Items: 777, Interactions: 65432,
		Training: &mf.Stats{Subjects: 4321, MeanNorm: 3.25},
		Eval:     train.Eval{Holdout: "last 2", Model: mf.Metrics{Recall20: 0.4567}, Popularity: mf.Metrics{Recall20: 0.1234}},
		Audit:    &mf.AuditResult{Canaries: 200, Included: 97}, Recommended: 4321, Warnings: []string{"δ = 0.001 is not below 1/4321 subjects"},
		Guarantee: &train.Guarantee{Epsilon: 8, Delta: 1e-6, Unit: "subject", Accountant: "pld", NoiseMultiplier: 1.1, SamplingRate: 0.01, Steps: 500, Clip: 1, MaxInteractions: 50},
		Charged:   &release.Charge{Epsilon: 8.5, Delta: 1e-5, Dataset: "shop", Accountant: "pld", Period: "2026-11"},
	}
}

var exactFigures = []string{"91234", "81234", "10000", "4321", "777", "65432", "3.25", "0.4567", "0.1234", "0.456", "0.123", "not below"}

func checkNoExactFigures(t *testing.T, what, out string) {
	t.Helper()
	for _, x := range exactFigures {
		if strings.Contains(out, x) {
			t.Errorf("%s of a DP run holds the exact figure %s:\n%s", what, x, out)
		}
	}
	if !strings.Contains(out, "state/steward/train/dt=2026-11-27/run=r") {
		t.Errorf("%s does not say where the steward report is:\n%s", what, out)
	}
}

// veil train's summary and --json, and veil run's --json, show a DP run's
// guarantee, charge and steward report's location, never its exact counts
// or its evaluation on the private holdout.
func TestPrintedDPReportsHoldNoExactFigures(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var b bytes.Buffer
		if err := printTrainReport(&b, dpTrainReport(), asJSON); err != nil {
			t.Fatal(err)
		}
		checkNoExactFigures(t, "veil train's output", b.String())
		if !strings.Contains(b.String(), "8.5") {
			t.Errorf("veil train's output lacks the ledger's charge:\n%s", b.String())
		}
	}
	res := &jobs.Result{Job: "nightly", Steps: []jobs.StepResult{{Step: "recs", Train: dpTrainReport()}}}
	b, err := json.Marshal(publicResult(res))
	if err != nil {
		t.Fatal(err)
	}
	checkNoExactFigures(t, "veil run --json", string(b))
	if res.Steps[0].Train.Subjects != 4321 {
		t.Error("publicResult changed the run's result")
	}
}

// veil train mf on the shop's subjects (an events table) with a DP release
// prints no exact count and no evaluation on the private holdout, in text
// or JSON: they go to a steward report, whose location it prints.
func TestTrainMFDPRunPrintsNoExactFigures(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "100", "--days", "20"); code != 0 {
		t.Fatal(msg)
	}
	events := filepath.Join(dir, "shop", "events")
	ledger := filepath.Join(dir, "state", "ledger")
	args := []string{"train", "mf", "--in", events, "--catalog", filepath.Join(dir, "shop", "catalog"), "--epsilon", "8", "--ledger", ledger, "--dim", "4", "--epochs", "1", "--curve", "--baselines=false", "--accountant", "rdp", "--logical-date", "2026-11-27"}
	code, out, msg := run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("train mf: %d %s", code, msg)
	}
	var pub map[string]any
	if err := json.Unmarshal([]byte(out), &pub); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"subjects", "items", "interactions", "filter", "training", "evaluation", "curve", "warnings"} {
		if _, ok := pub[k]; ok {
			t.Errorf("train mf --json of a DP run prints %s: %s", k, out)
		}
	}
	if strings.Contains(pub["consent"].(string), "subjects") {
		t.Errorf("consent note with a count: %s", pub["consent"])
	}
	steward, _ := pub["steward_report"].(string)
	if !strings.HasPrefix(steward, "file://"+filepath.Join(dir, "state", "steward", "train-mf", "dt=2026-11-27")) {
		t.Fatalf("steward report at %q", steward)
	}
	ref, _ := open.Ref(context.Background(), steward, dataset.URLOptions{})
	sm, err := dataset.VerifyManifest(context.Background(), ref.Store, ref.Key)
	if err != nil || sm.Class != dataset.ClassSteward {
		t.Fatalf("steward report: %v %+v", err, sm)
	}
	f, ok := sm.Find(train.StewardReportFile)
	if !ok {
		t.Fatalf("steward report lacks %s: %v", train.StewardReportFile, sm.Files)
	}
	b, _ := dataset.ReadAll(context.Background(), ref.Store, dataset.Join(ref.Key, f.Key))
	var full struct {
		Subjects int                `json:"subjects"`
		Curve    []train.CurvePoint `json:"curve"`
	}
	if err := json.Unmarshal(b, &full); err != nil || full.Subjects == 0 || len(full.Curve) == 0 {
		t.Fatalf("steward report %v: %s", err, b)
	}
	code, out, msg = run(t, args...)
	if code != 0 {
		t.Fatalf("train mf: %d %s", code, msg)
	}
	for _, x := range []string{"subjects", "Recall"} {
		if strings.Contains(out, x) {
			t.Errorf("train mf of a DP run prints %q:\n%s", x, out)
		}
	}
	if regexp.MustCompile(`(^|[^.\d])` + strconv.Itoa(full.Subjects) + `([^.\d]|$)`).MatchString(out) {
		t.Errorf("train mf of a DP run prints the exact subject count %d:\n%s", full.Subjects, out)
	}
	if !strings.Contains(out, "steward report: file://") {
		t.Errorf("train mf does not say where the steward report is:\n%s", out)
	}
	// --curve-png would put an evaluation on the private holdout on disk
	// beside the release: refused before anything is spent.
	if code, _, msg := run(t, append(args, "--curve-png", filepath.Join(dir, "c.png"))...); code != 2 || !strings.Contains(msg, "steward report") {
		t.Errorf("--curve-png in a DP run: exit %d %s", code, msg)
	}
}
