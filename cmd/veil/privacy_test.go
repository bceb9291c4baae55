package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

func TestPrivacyCommands(t *testing.T) {
	code, out, msg := run(t, "privacy", "epsilon", "--accountant", "rdp", "--sampling-rate", "0.01", "--noise-multiplier", "2.5", "--steps", "50", "--delta", "1e-5", "--json")
	if code != 0 {
		t.Fatalf("epsilon: %d %s", code, msg)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"accountant", "epsilon", "delta", "order"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON %s lacks %q", out, k)
		}
	}
	code, out, _ = run(t, "privacy", "epsilon", "--accountant", "pld", "--sampling-rate", "0.01", "--noise-multiplier", "2.5", "--steps", "50", "--delta", "1e-5", "--json")
	if code != 0 || strings.Contains(out, "order") {
		t.Errorf("pld epsilon: %d %s", code, out)
	}
	code, out, msg = run(t, "privacy", "calibrate", "--accountant", "rdp", "--target-epsilon", "1", "--sampling-rate", "0.01", "--steps", "1000", "--delta", "1e-5", "--json")
	if code != 0 {
		t.Fatalf("calibrate: %d %s", code, msg)
	}
	var c accountant.Calibration
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Epsilon > 1 || c.NoiseMultiplier <= 0 {
		t.Errorf("calibrate printed %s", out)
	}
	bad := [][]string{
		{"privacy", "epsilon", "--sampling-rate", "0", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"},
		{"privacy", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "-1", "--steps", "10", "--delta", "1e-5"},
		{"privacy", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "0", "--delta", "1e-5"},
		{"privacy", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1"},
		{"privacy", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "Inf", "--steps", "10", "--delta", "1e-5"},
		{"privacy", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10"},
		{"privacy", "epsilon", "--accountant", "moments", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"},
		{"privacy", "calibrate", "--target-epsilon", "NaN", "--sampling-rate", "0.1", "--steps", "10", "--delta", "1e-5"},
		{"privacy", "calibrate", "--target-epsilon", "0.0001", "--sampling-rate", "1", "--steps", "100000", "--delta", "1e-9"},
	}
	for _, args := range bad {
		if code, _, msg := run(t, args...); code != 2 || msg == "" {
			t.Errorf("%v: exit %d (%s), want 2", args, code, msg)
		}
	}
}

func TestBudgetShow(t *testing.T) {
	dir := t.TempDir()
	s, _ := dataset.NewFileStore(dir)
	l := budget.Open(s, "")
	p := budget.Policy{Epsilon: 5, Delta: 1e-5, Period: "month"}
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	ev := []accountant.Event{{Mechanism: accountant.SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 1.1, Count: 1000}}
	if _, err := l.Spend(context.Background(), budget.Request{Dataset: "shop/events", RunID: "run-a", LogicalDate: day, Accountant: "rdp", Events: ev, Policy: p}); err != nil {
		t.Fatal(err)
	}
	code, out, msg := run(t, "budget", "show", "shop/events", "--ledger", dir, "--epsilon", "5", "--delta", "1e-5", "--period", "month", "--date", "2026-11-03", "--json")
	if code != 0 {
		t.Fatalf("budget show: %d %s", code, msg)
	}
	var st budget.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 1 || st.Remaining == nil || *st.Remaining > 3.5 || *st.Remaining < 3 {
		t.Errorf("status %s", out)
	}
	code, out, _ = run(t, "budget", "show", "shop/events", "--ledger", dir)
	if code != 0 || !strings.Contains(out, "run-a") {
		t.Errorf("text: %d\n%s", code, out)
	}
	if code, _, _ := run(t, "budget", "show", "shop/events", "--ledger", dir, "--epsilon", "5", "--delta", "2"); code != 2 {
		t.Errorf("bad policy: exit %d", code)
	}
}
