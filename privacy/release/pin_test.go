package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

func pinTo(file string) dataset.URLOptions {
	return dataset.URLOptions{Getenv: func(k string) string {
		if k == privacy.PolicyEnv {
			return file
		}
		return ""
	}}
}

// The deployment pins the data steward's policy (VEIL_POLICY): a job that
// names its own policy is refused before anything is spent, a job that
// names none spends the pinned budget, and only then does the record say
// that the steward chose it.
func TestPinnedPolicy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	events, id := shop(t, dir, "events")
	ledger := filepath.Join(dir, "ledger")
	steward := policyFile(t, dir, fmt.Sprintf("%q: {ledger: %s, epsilon: 2, delta: 1.0e-5, period: month}", events, ledger))
	own := policyFile(t, dir, fmt.Sprintf("%q: {ledger: %s, epsilon: 100, delta: 1.0e-5, period: month}", events, filepath.Join(dir, "own-ledger")))
	ev := accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 1, NoiseMultiplier: 4, Count: 1, Note: "model"}
	req := Request{Table: events, RunID: "run-1", Job: "train", LogicalDate: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), WindowDays: 30,
		Accountant: "rdp", Events: []accountant.Event{ev}, Config: "c"}
	pinned := pinTo(steward)
	records := func(l string) int {
		s, _ := dataset.NewFileStore(l)
		recs, _ := budget.Open(s, "").Records(ctx, id)
		return len(recs)
	}

	t.Run("the job's own policy is refused", func(t *testing.T) {
		r := req
		r.PolicyFile = own
		_, _, err := Spend(ctx, r, pinned)
		if !errors.Is(err, privacy.ErrRefused) || errors.Is(err, budget.ErrPolicy) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("err = %v, want a one-line refusal", err)
		}
		if !strings.Contains(err.Error(), own) || !strings.Contains(err.Error(), privacy.PolicyEnv) {
			t.Errorf("%v names neither the job's policy nor %s", err, privacy.PolicyEnv)
		}
		if n, m := records(ledger), records(filepath.Join(dir, "own-ledger")); n+m != 0 {
			t.Errorf("a refused run spent: %d, %d records", n, m)
		}
	})
	t.Run("no policy: the pinned one", func(t *testing.T) {
		rec, b, err := Spend(ctx, req, pinned)
		if err != nil {
			t.Fatal(err)
		}
		if b.Ledger != ledger || b.Epsilon != 2 || !b.FromSteward() || !strings.Contains(rec.SetBy, steward) || !strings.Contains(rec.SetBy, "sha256 ") {
			t.Errorf("budget %+v, record set by %q", b, rec.SetBy)
		}
		if note := SetByNote(rec.SetBy); !strings.HasPrefix(note, "the data steward's policy "+steward) {
			t.Errorf("note %q", note)
		}
	})
	t.Run("the pinned policy spelt otherwise", func(t *testing.T) {
		r := req
		r.RunID, r.PolicyFile = "run-2", "file://"+steward
		if _, b, err := Spend(ctx, r, pinned); err != nil || !b.FromSteward() {
			t.Errorf("budget %+v, %v", b, err)
		}
	})
	t.Run("unpinned: chosen by the job", func(t *testing.T) {
		var logs bytes.Buffer
		r := req
		r.RunID, r.PolicyFile, r.Log = "run-3", own, slog.New(slog.NewTextHandler(&logs, nil))
		rec, b, err := Spend(ctx, r, pinTo(""))
		if err != nil {
			t.Fatal(err)
		}
		want := "policy " + own + " (sha256 "
		if b.FromSteward() || !strings.HasPrefix(rec.SetBy, want) || !strings.HasSuffix(rec.SetBy, "chosen by the job: no pinned policy (VEIL_POLICY unset)") {
			t.Errorf("record set by %q", rec.SetBy)
		}
		for _, s := range []string{SetByNote(rec.SetBy), b.String()} {
			if strings.Contains(s, "steward's") || !strings.Contains(s, "chosen by the job") {
				t.Errorf("%q claims the steward chose the budget", s)
			}
		}
		if !strings.Contains(logs.String(), "chosen by the job") {
			t.Errorf("log %q does not say who chose the budget", logs.String())
		}
	})
}

// A policy pinned by URL is read from its store.
func TestPinnedPolicyURL(t *testing.T) {
	dir := t.TempDir()
	events, _ := shop(t, dir, "events")
	steward := policyFile(t, dir, fmt.Sprintf("%q: {ledger: %s, epsilon: 2, delta: 1.0e-5}", events, filepath.Join(dir, "ledger")))
	if _, err := os.Stat(steward); err != nil {
		t.Fatal(err)
	}
	b, err := Resolve(context.Background(), events, nil, "", pinTo("file://"+steward))
	if err != nil || !b.FromSteward() || b.Epsilon != 2 {
		t.Errorf("budget %+v, %v", b, err)
	}
}
