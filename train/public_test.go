package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

// A DP run's public report (what veil train and veil run print, to
// whoever runs them) holds the guarantee, the ledger's charge and where
// the release and the steward report are; no exact count, filter drop,
// diagnostic or evaluation on the private holdout.
func TestPublicReportWithholdsExactFigures(t *testing.T) {
	full := &Report{RunID: "r", LogicalDate: "2026-11-27", Output: "out", Steward: "st", Purposes: Purposes,
		Filter:   privacy.Report{RowsRead: 91234, RowsKept: 81234, RowsDropped: map[string]int64{"no_consent": 10000}, SubjectsKept: 4321},
		Subjects: 4321, Items: 777, Interactions: 65432,
		Training: &mf.Stats{Subjects: 4321, Interactions: 65432, MeanNorm: 3.25, ClippedShare: 0.4},
		Eval:     Eval{Holdout: "last 2", Model: mf.Metrics{Recall20: 0.4567}, Popularity: mf.Metrics{Recall20: 0.1234}},
		Curve:    []CurvePoint{{Epsilon: 1, Metrics: mf.Metrics{Recall20: 0.2}}},
		Audit:    &mf.AuditResult{Canaries: 200, Included: 97}, Exposure: &Exposure{Recommendations: 86420, Gini: 0.5},
		Recommended: 4321, NotRecommended: map[string]int{"no_interactions": 12}, Warnings: []string{"δ = 0.001 is not below 1/4321 subjects"},
		Guarantee: &Guarantee{Epsilon: 8, Delta: 1e-6, Unit: "subject", Accountant: "pld", NoiseMultiplier: 1.1, SamplingRate: 0.01, Steps: 500, Clip: 1, MaxInteractions: 50},
		Charged:   &release.Charge{Epsilon: 8.5, Delta: 1e-5, Dataset: "shop", Accountant: "pld"},
	}
	pub := full.Public()
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, exact := range []string{"91234", "81234", "10000", "4321", "777", "65432", "3.25", "0.4567", "0.1234", "86420", "no_interactions", "not below"} {
		if strings.Contains(js, exact) {
			t.Errorf("the public report of a DP run holds %s: %s", exact, js)
		}
	}
	for _, want := range []string{`"steward_report":"st"`, `"output":"out"`, `"budget_charged"`, `"model_guarantee"`, `"withheld"`} {
		if !strings.Contains(js, want) {
			t.Errorf("the public report lacks %s: %s", want, js)
		}
	}
	if full.Subjects != 4321 || full.Training == nil {
		t.Error("Public changed the full report")
	}
	// A run without any DP release is not a DP release: it keeps its figures.
	np := &Report{Subjects: 4321, Eval: Eval{Model: mf.Metrics{Recall20: 0.4567}}}
	np.Model.Epsilon = math.Inf(1)
	if np.Public() != np {
		t.Error("the public report of a non-DP run dropped its exact figures")
	}
}

// A DP training run logs no exact count and no evaluation on the private
// holdout at any level: scheduler logs are read by many.
func TestRunLogsNoExactFiguresInDPRun(t *testing.T) {
	dir := shop(t, 300)
	cfg := jobConfig(dir)
	cfg.Model.Epochs = 1
	cfg.Evaluation.Curve, cfg.Evaluation.CurveEpsilons = true, []float64{4}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, k := range []string{"subjects", "items", "interactions", "events", "batch", "recall_at_20", "membership_auc", "epsilon_lower_bound"} {
			if _, ok := rec[k]; ok {
				t.Errorf("a DP run logs %s: %s", k, line)
			}
		}
		for _, n := range []int{rep.Subjects, rep.Items, rep.Interactions} {
			if strings.Contains(line, `:`+strconv.Itoa(n)+`,`) || strings.Contains(line, `:`+strconv.Itoa(n)+`}`) {
				t.Errorf("a DP run logs the exact figure %d: %s", n, line)
			}
		}
	}
	if !strings.Contains(logs.String(), rep.Steward) {
		t.Errorf("the logs do not say where the steward report is:\n%s", logs.String())
	}
}

// A DP training run that fails after its budget was spent says what went
// wrong without an exact count of the private data (the error text goes
// to stderr, the lineage errorMessage and the audit log): a window
// without any consented interaction states the window, public settings,
// and no count of rows read or kept.
func TestDPRunErrorsHoldNoExactCounts(t *testing.T) {
	dir := shop(t, 300)
	cfg := jobConfig(dir)
	cfg.Interactions.EventWeights = map[string]float64{"wishlist": 1}
	_, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if !errors.Is(err, mf.ErrInput) {
		t.Fatalf("no interactions: %v", err)
	}
	store, _ := dataset.NewFileStore(dir)
	id, ierr := cfg.Identity(context.Background(), dataset.URLOptions{})
	if ierr != nil {
		t.Fatal(ierr)
	}
	if recs, _ := budget.Open(store, "ledger").Records(context.Background(), id); len(recs) != 1 {
		t.Fatalf("the run failed before spending (%d ledger records): %v", len(recs), err)
	}
	public := strings.NewReplacer(logical.Format(time.DateOnly), "", fmt.Sprintf("%d days", cfg.Interactions.WindowDays), "").Replace(err.Error())
	if d := regexp.MustCompile(`\d+`).FindString(public); d != "" {
		t.Errorf("the error of a DP run that spent holds the figure %s: %v", d, err)
	}
}
