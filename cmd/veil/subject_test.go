package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/jobs/access"
	"github.com/veil-privacy/veil/lineage"
)

// readTable reads every row of the Parquet files matching glob.
func readTable[T any](t *testing.T, glob string) []T {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no file matches %s", glob)
	}
	var out []T
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, rows...)
	}
	return out
}

// TestSubjectReport: the access report of a generated subject of the demo
// shop matches the data it was built from (its consent records, its
// cohort assignment, its recommendations and their reasons, the runs that
// used it); an erased subject's report is refused with exit 3 except to
// confirm the erasure; every report is in the audit log with who ran it.
func TestSubjectReport(t *testing.T) {
	nightly, _ := filepath.Abs("../../configs/nightly.yaml")
	t.Chdir(t.TempDir())
	if code, _, msg := run(t, "demo", "--subjects", "300", "--days", "3"); code != 0 {
		t.Fatalf("demo: %d %s", code, msg)
	}
	t.Setenv("VEIL_PRINCIPAL", "steward:ada")
	recs := readTable[dataset.ExplainedRecommendation](t, "veil-demo/out/models/dt=2026-11-27/run=*/recommendations-*.parquet")
	if len(recs) == 0 {
		t.Fatal("the demo recommended nothing")
	}
	subject := recs[0].SubjectID
	var want []dataset.ExplainedRecommendation
	for _, r := range recs {
		if r.SubjectID == subject {
			want = append(want, r)
		}
	}
	code, out, msg := run(t, "subject", "report", "--spec", nightly, "--subject", subject, "--logical-date", "2026-11-27", "--json")
	if code != 0 {
		t.Fatalf("subject report: %d %s", code, msg)
	}
	var rep access.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Subject != subject || rep.Erased || rep.Principal != "steward:ada" {
		t.Errorf("report header %+v", rep)
	}
	// Consent: each purpose's deciding record is the subject's latest
	// record of that purpose up to the end of the day (the demo's records
	// name one purpose each, without TC strings).
	consent := readTable[dataset.Consent](t, "veil-demo/shop/consent/*.parquet")
	cutoff := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	latest := map[string]dataset.Consent{}
	for _, c := range consent {
		if c.SubjectID != subject || c.Purpose == nil || !c.RecordedAt.Before(cutoff) {
			continue
		}
		if l, ok := latest[*c.Purpose]; !ok || c.RecordedAt.After(l.RecordedAt) {
			latest[*c.Purpose] = c
		}
	}
	if len(rep.Consent) != 4 {
		t.Fatalf("consent for %d purposes, want 4: %+v", len(rep.Consent), rep.Consent)
	}
	for _, p := range rep.Consent {
		l, ok := latest[p.Purpose]
		switch {
		case !ok && (p.State != "no_consent" || len(p.Records) != 0):
			t.Errorf("%s: %+v without a record", p.Purpose, p)
		case ok && p.State != "opted_out" && (len(p.Records) != 1 || !p.Records[0].RecordedAt.Equal(l.RecordedAt) || p.Records[0].Status != l.Status || p.State != l.Status):
			t.Errorf("%s: %+v, latest record %+v", p.Purpose, p, l)
		}
	}
	// It got recommendations, so it allows personalization.
	if i := slices.IndexFunc(rep.Consent, func(p access.Purpose) bool { return p.Purpose == "personalization" }); rep.Consent[i].State != "granted" {
		t.Errorf("recommended but personalization %+v", rep.Consent[i])
	}
	// Recommendations: exactly the subject's rows, with their reasons.
	if len(rep.Recommendations) != len(want) {
		t.Fatalf("%d recommendations, want %d", len(rep.Recommendations), len(want))
	}
	for i, r := range rep.Recommendations {
		w := want[i]
		if r.Rank != w.Rank || r.ItemID != w.ItemID || r.Score != w.Score || !slices.Equal(r.BecauseItems, w.BecauseItems) || !slices.Equal(r.BecauseShares, w.BecauseShares) {
			t.Errorf("recommendation %d: %+v, want %+v", i, r, w)
		}
	}
	// Cohorts: the subject's assignment in every cohort export holding it.
	var assigned int
	for _, glob := range []string{"veil-demo/out/cohorts/dt=2026-11-27/run=*/assignments-*.parquet", "veil-demo/out/cohorts-dp/dt=2026-11-27/run=*/assignments-*.parquet"} {
		for _, a := range readTable[dataset.CohortAssignment](t, glob) {
			if a.SubjectID != subject {
				continue
			}
			assigned++
			i := slices.IndexFunc(rep.Cohorts, func(c access.Cohort) bool { return c.RunID == a.RunID })
			if i < 0 || rep.Cohorts[i].CohortID != a.CohortID || rep.Cohorts[i].Explanation == "" {
				t.Errorf("assignment %+v, report's cohorts %+v", a, rep.Cohorts)
			}
		}
	}
	if assigned != len(rep.Cohorts) {
		t.Errorf("%d assignments, %d cohorts in the report", assigned, len(rep.Cohorts))
	}
	// Runs: the training run is among them, with the ledger's (ε, δ).
	i := slices.IndexFunc(rep.Runs, func(r access.Run) bool { return strings.HasSuffix(r.Job, ".recs") })
	if i < 0 || rep.Runs[i].Epsilon == nil || !(*rep.Runs[i].Epsilon > 0) || rep.Runs[i].Delta == nil || len(rep.Runs[i].Releases) == 0 {
		t.Errorf("runs %+v lack the training run with its charge", rep.Runs)
	}
	code, md, _ := run(t, "subject", "report", "--spec", nightly, "--subject", subject, "--logical-date", "2026-11-27")
	for _, w := range []string{"# Subject access report", "## Consent", "## Recommendations", want[0].ItemID} {
		if code != 0 || !strings.Contains(md, w) {
			t.Errorf("Markdown report (exit %d) lacks %q:\n%s", code, w, md)
		}
	}

	// Subjects without personalization consent: the non-personalized list,
	// the same for each of them.
	erasures := readTable[dataset.Erasure](t, "veil-demo/shop/erasure/*.parquet")
	last := map[string]dataset.Consent{}
	for _, c := range consent {
		if c.Purpose == nil || *c.Purpose != "personalization" || !c.RecordedAt.Before(cutoff) {
			continue
		}
		if l, ok := last[c.SubjectID]; !ok || c.RecordedAt.After(l.RecordedAt) {
			last[c.SubjectID] = c
		}
	}
	var denied []string
	for id, c := range last {
		if c.Status != "granted" && !slices.ContainsFunc(erasures, func(e dataset.Erasure) bool { return e.SubjectID == id }) {
			denied = append(denied, id)
		}
	}
	slices.Sort(denied)
	if len(denied) < 2 {
		t.Fatalf("%d subjects without personalization consent in the demo shop", len(denied))
	}
	list := readTable[dataset.NonPersonalized](t, "veil-demo/out/models/dt=2026-11-27/run=*/nonpersonalized-*.parquet")
	var lists [][]access.Recommendation
	for _, id := range denied[:2] {
		code, out, msg := run(t, "subject", "report", "--spec", nightly, "--subject", id, "--logical-date", "2026-11-27", "--json")
		var r access.Report
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("report of %s: %d %s", id, code, msg)
		}
		if len(r.Recommendations) != len(list) || len(list) == 0 {
			t.Fatalf("%s: %d recommendations, the non-personalized list has %d", id, len(r.Recommendations), len(list))
		}
		for i, x := range r.Recommendations {
			w := list[i]
			if x.List != w.List || x.ItemID != w.ItemID || x.Rank != w.Rank || len(x.BecauseItems) != 0 {
				t.Errorf("%s: %+v, want %+v", id, x, w)
			}
			x.Output = ""
			r.Recommendations[i] = x
		}
		lists = append(lists, r.Recommendations)
	}
	if !slices.EqualFunc(lists[0], lists[1], func(a, b access.Recommendation) bool {
		return a.RunID == b.RunID && a.Rank == b.Rank && a.ItemID == b.ItemID && a.Score == b.Score && a.List == b.List
	}) {
		t.Errorf("two subjects without personalization consent see different lists: %v and %v", lists[0], lists[1])
	}

	// An erased subject: refused, except to confirm the erasure.
	erased := erasures[0].SubjectID
	if code, out, msg := run(t, "subject", "report", "--spec", nightly, "--subject", erased, "--logical-date", "2026-11-27"); code != 3 || out != "" {
		t.Errorf("erased subject: exit %d (%s), printed %q", code, msg, out)
	}
	code, out, msg = run(t, "subject", "report", "--spec", nightly, "--subject", erased, "--logical-date", "2026-11-27", "--confirm-erasure", "--json")
	var conf access.Report
	if code != 0 || json.Unmarshal([]byte(out), &conf) != nil || !conf.Erased || conf.ErasureRequested == nil || conf.Consent != nil || conf.Recommendations != nil || conf.Runs != nil {
		t.Errorf("confirming erasure: exit %d (%s): %s", code, msg, out)
	}

	// Confirming erasure of a subject who asked for none says only that:
	// not a report with empty sections that reads like "nothing held".
	code, out, msg = run(t, "subject", "report", "--spec", nightly, "--subject", subject, "--logical-date", "2026-11-27", "--confirm-erasure")
	if code != 0 || !strings.Contains(out, "No erasure request of this subject is on record") || strings.Contains(out, "## Consent") || strings.Contains(out, "None.") {
		t.Errorf("confirming erasure of a subject who asked for none: exit %d (%s):\n%s", code, msg, out)
	}

	// The audit log: seven reports, who ran them, the refusal.
	s, _ := dataset.NewFileStore("veil-demo/state/audit")
	all, err := lineage.OpenAudit(s, "").Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, a := range all {
		if a.Action == "subject-report" {
			if a.Principal != "steward:ada" || len(a.Reads) == 0 || !strings.HasPrefix(a.Reads[0], "subject ") {
				t.Errorf("audit record %+v", a)
			}
			outcomes = append(outcomes, a.Outcome)
		}
	}
	if !slices.Equal(outcomes, []string{"completed", "completed", "completed", "completed", "refused", "completed", "completed"}) {
		t.Errorf("audit outcomes %v", outcomes)
	}
}
