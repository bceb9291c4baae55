package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/budget"
)

var ctx = context.Background()

func testSpec(t *testing.T) (*Spec, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = 800, 200, 10
	s, _ := synth.New(cfg)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(ctx, store, "", "test"); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`name: nightly
state: %[1]s/state
lock: {ttl: 2s}
steps:
  - name: cohorts
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/cohorts
      kmeans: {k: "3", seed: 1}
      cohort_floor: {min_size: 30, small: merge}
      noisy_sizes_sigma: 3
      privacy: {epsilon: 1, delta: 1.0e-6, accountant: rdp}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: 10, delta: 1.0e-5, period: total}
  - name: more
    depends_on: [cohorts]
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/more
      kmeans: {k: "4", seed: 2}
      cohort_floor: {min_size: 30, small: suppress}
  - name: recs
    train:
      events: %[1]s/shop/events
      output: %[1]s/out/models
      model: {dim: 8, epsilon: 4, accountant: rdp}
      budget: {ledger: %[1]s/ledger, dataset: shop-models, epsilon: 20, delta: 1.0e-5, period: total}
`, dir)
	path := filepath.Join(dir, "spec.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec, dir
}

var day = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func TestRunNoOpAndForce(t *testing.T) {
	spec, dir := testSpec(t)
	r1, err := Run(ctx, spec, Options{LogicalDate: day})
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.Steps) != 3 || r1.NoOp || r1.Steps[0].Step != "cohorts" {
		t.Fatalf("first run %+v", r1)
	}
	r2, err := Run(ctx, spec, Options{LogicalDate: day})
	if err != nil || !r2.NoOp || r2.RunID != r1.RunID {
		t.Fatalf("rerun: %+v, %v", r2, err)
	}
	r3, err := Run(ctx, spec, Options{LogicalDate: day, Force: true})
	if err != nil || r3.NoOp || r3.RunID == r1.RunID || !strings.Contains(r3.Message, "superseding run "+r1.RunID) {
		t.Fatalf("forced run: %+v, %v", r3, err)
	}
	// Each run spent once for its noisy sizes: two records.
	store, _ := dataset.NewFileStore(dir)
	recs, err := budget.Open(store, "ledger").Records(ctx, "shop")
	if err != nil || len(recs) != 2 {
		t.Fatalf("ledger: %d records, %v", len(recs), err)
	}
	// Another date is a new run.
	if r4, err := Run(ctx, spec, Options{LogicalDate: day.AddDate(0, 0, -1)}); err != nil || r4.NoOp {
		t.Fatalf("another date: %+v, %v", r4, err)
	}
}

func TestLock(t *testing.T) {
	spec, dir := testSpec(t)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "state"))
	now := time.Now
	held, err := acquire(ctx, store, "nightly/dt=2026-11-27/lock", "other@host:42", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, spec, Options{LogicalDate: day})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "other@host:42") {
		t.Fatalf("run under a held lock: %v", err)
	}
	// Once the lease expires, a run takes the lock over.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := Run(ctx, spec, Options{LogicalDate: day, Now: later}); err != nil {
		t.Fatalf("run after the lease expired: %v", err)
	}
	// The old holder finds out when it renews.
	if err := held.renew(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("renewing a lost lease: %v", err)
	}
	// Two racing takers: one wins.
	store2, _ := dataset.NewFileStore(t.TempDir())
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := acquire(ctx, store2, "l", fmt.Sprint("racer", i), time.Hour, now)
			errs <- err
		}()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Errorf("two takers: %v, %v", e1, e2)
	}
}

func TestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"unknown key":    "name: n\nstate: s\ncolour: red\nsteps: []\n",
		"bad name":       "name: Nightly!\nstate: s\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"no steps":       "name: n\nstate: s\n",
		"no state":       "name: n\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"unknown dep":    "name: n\nstate: s\nsteps: [{name: a, depends_on: [b], segment: {events: e, output: o}}]\n",
		"cycle":          "name: n\nstate: s\nsteps: [{name: a, depends_on: [b], segment: {events: e, output: o}}, {name: b, depends_on: [a], segment: {events: e, output: o}}]\n",
		"duplicate":      "name: n\nstate: s\nsteps: [{name: a, segment: {events: e, output: o}}, {name: a, segment: {events: e, output: o}}]\n",
		"no work":        "name: n\nstate: s\nsteps: [{name: a}]\n",
		"bad step cfg":   "name: n\nstate: s\nsteps: [{name: a, segment: {events: e, output: o, kmeans: {k: zero}}}]\n",
		"bad ttl":        "name: n\nstate: s\nlock: {ttl: forever}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"wrong type":     "name: n\nstate: s\nretries: {attempts: many}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"two kinds":      "name: n\nstate: s\nsteps: [{name: a, segment: {events: e, output: o}, train: {events: e, output: o, model: {epsilon: .inf}}}]\n",
		"no epsilon":     "name: n\nstate: s\nsteps: [{name: a, train: {events: e, output: o}}]\n",
		"purpose":        "name: n\nstate: s\npurposes: [segmentation, marketing]\nsteps: [{name: a, train: {events: e, output: o, model: {epsilon: .inf}}}]\n",
		"bad purpose":    "name: n\nstate: s\npurposes: [advertising]\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"zone unused":    "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"no zones":       "name: n\nstate: s\nsegregation: {zones: []}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"zone by":        "name: n\nstate: s\nsegregation: {by: region, zones: [{name: eu, jurisdictions: [GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"zone twice":     "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}, {name: eu, jurisdictions: [CCPA]}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"shared law":     "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}, {name: us, jurisdictions: [CCPA, GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"no laws":        "name: n\nstate: s\nsegregation: {zones: [{name: eu}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"zone name":      "name: n\nstate: s\nsegregation: {zones: [{name: E.U, jurisdictions: [GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"zone sse":       "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR], storage: {sse: rot13}}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}}}]\n",
		"step laws":      "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o/{zone}, jurisdictions: [CCPA]}}]\n",
		"no placeholder": "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}]}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"report no out":  "name: n\nstate: s\nreport: {audience: steward}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"report reader":  "name: n\nstate: s\nreport: {out: site, audience: engineer}\nsteps: [{name: a, segment: {events: e, output: o}}]\n",
		"raw unzoned":    "name: n\nstate: s\nsegregation: {zones: [{name: eu, jurisdictions: [GDPR]}]}\nsteps: [{name: p, pseudonymize: {in: raw.csv, out: e/{zone}, id_column: id, key_env: K}}]\n",
	} {
		p := filepath.Join(dir, "s.yaml")
		os.WriteFile(p, []byte(doc), 0o644)
		_, err := LoadSpec(p)
		if !errors.Is(err, ErrSpec) {
			t.Errorf("%s: %v, want ErrSpec", name, err)
		} else if !strings.Contains(err.Error(), "s.yaml") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	for _, f := range []string{"nightly.yaml", "nightly-zones.yaml", "nightly-s3.yaml"} {
		if _, err := LoadSpec("../configs/" + f); err != nil {
			t.Errorf("configs/%s: %v", f, err)
		}
	}
}

// The report option is not part of the pipeline's identity: adding it to
// a spec does not make a completed date run again.
func TestReportOptionKeepsTheHash(t *testing.T) {
	doc := "name: n\nstate: s\nsteps: [{name: a, segment: {events: e, output: o}}]\n"
	a, err := ParseSpec("a.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSpec("b.yaml", []byte(doc+"report:\n  out: site/{date}\n  audience: marketing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Report == nil || b.Report.Out != "site/{date}" || b.Report.Audience != "marketing" {
		t.Fatalf("report option %+v", b.Report)
	}
	if a.Hash() != b.Hash() {
		t.Error("the report option changed the spec's hash")
	}
}

// Under segregation each step runs once per zone, named STEP.ZONE, its
// dependencies within the zone, its URLs and jurisdictions the zone's.
func TestSegregationExpands(t *testing.T) {
	doc := `name: n
state: s
segregation:
  zones:
    - {name: eu, jurisdictions: [GDPR, UK-GDPR], storage: {sse: aws:kms, sse_kms_key_id: eu-key}}
    - {name: us, jurisdictions: [CCPA]}
steps:
  - {name: b, depends_on: [a], train: {events: "s3://shop/{zone}/events", output: "s3://out-{zone}/models", model: {epsilon: 4}, budget: {ledger: s3://state/ledger, epsilon: 10, delta: 1.0e-5}}}
  - {name: a, segment: {events: s3://shop/events, output: "s3://out-{zone}/cohorts"}}
`
	spec, err := ParseSpec("s.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	order, err := spec.Order()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range order {
		names = append(names, st.Name)
	}
	if want := "a.eu a.us b.eu b.us"; strings.Join(names, " ") != want {
		t.Fatalf("order %v, want %s", names, want)
	}
	b := order[2]
	if b.Train.Events != "s3://shop/eu/events" || b.Train.Output != "s3://out-eu/models" || b.Train.Budget.Ledger != "s3://state/ledger" ||
		strings.Join(b.Train.Jurisdictions, ",") != "GDPR,UK-GDPR" || b.DependsOn[0] != "a.eu" || b.Zone().Name != "eu" ||
		strings.Join(b.zoned, " ") != "s3://shop/eu/events s3://out-eu/models" {
		t.Errorf("b.eu: %+v %+v", b, b.Train)
	}
	// The shared ledger and the US outputs are written unencrypted; the
	// EU zone's outputs ask for SSE-KMS.
	if got := strings.Join(spec.unencryptedWrites(), " "); got != "s3://state/ledger s3://out-us/models s3://out-us/cohorts" {
		t.Errorf("unencrypted writes: %s", got)
	}
	// The spec's own steps are untouched.
	if spec.Steps[0].Train.Output != "s3://out-{zone}/models" || spec.Steps[0].Train.Jurisdictions != nil {
		t.Errorf("expansion changed the spec: %+v", spec.Steps[0].Train)
	}
	// Every location of every zone is listed for access checks.
	var urls []string
	for _, a := range spec.Accesses() {
		urls = append(urls, a.URL)
	}
	for _, u := range []string{"s3://out-eu/cohorts", "s3://out-us/models", "s3://shop/us/events"} {
		if !slices.Contains(urls, u) {
			t.Errorf("accesses lack %s: %v", u, urls)
		}
	}
}

// A step longer than the lease keeps the lock: the lease is renewed in the
// background.
func TestLeaseRenewedDuringLongStep(t *testing.T) {
	store, _ := dataset.NewFileStore(t.TempDir())
	// A lease of 2 s renewed every 0.67 s: it lapses only if the renewer
	// stalls for 2 s, which a loaded test machine does not do.
	l, err := acquire(ctx, store, "lk", "me", 2*time.Second, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go l.keepAlive(c, cancel)
	time.Sleep(3 * time.Second)
	if _, err := acquire(ctx, store, "lk", "other", time.Minute, time.Now); !errors.Is(err, ErrLocked) {
		t.Fatalf("the lease lapsed while renewed: %v", err)
	}
	if c.Err() != nil {
		t.Fatalf("keepAlive gave up: %v", context.Cause(c))
	}
}

// Every event a run emits validates against OpenLineage 2-0-2 and the facet
// schemas, and the events link inputs to runs to outputs; the audit log
// verifies.
func TestLineageAndAudit(t *testing.T) {
	spec, dir := testSpec(t)
	res, err := Run(ctx, spec, Options{LogicalDate: day, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := lineagetest.New("..")
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "state"))
	type ev struct {
		EventType string
		Run       struct {
			RunID  string
			Facets map[string]map[string]any
		}
		Job struct {
			Name   string
			Facets map[string]map[string]any
		}
		Inputs  []struct{ Namespace, Name string }
		Outputs []struct {
			Namespace, Name string
			Facets          map[string]map[string]any
		}
	}
	var events []ev
	for info, err := range store.List(ctx, "lineage/") {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := dataset.ReadAll(ctx, store, info.Key)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", info.Key, err)
		}
		var e ev
		json.Unmarshal(data, &e)
		events = append(events, e)
	}
	kinds := map[string]int{}
	outputs := map[string]bool{}
	for _, e := range events {
		kinds[e.Job.Name+" "+e.EventType]++
		if strings.Contains(e.Job.Name, ".") {
			parent := e.Run.Facets["parent"]["run"].(map[string]any)["runId"]
			if parent != res.RunID {
				t.Errorf("step %s has parent %v, want %s", e.Job.Name, parent, res.RunID)
			}
			if e.EventType == "COMPLETE" {
				if len(e.Inputs) != 1 || !strings.HasSuffix(e.Inputs[0].Name, "shop/events") {
					t.Errorf("step inputs %+v", e.Inputs)
				}
				for _, o := range e.Outputs {
					outputs[o.Name] = true
				}
				if e.Run.Facets["veil_privacy"] == nil || e.Run.Facets["veil_contributors"] == nil {
					t.Errorf("step %s lacks the veil_privacy or veil_contributors facet", e.Job.Name)
				}
				// The consent snapshot's fingerprint, or for a step that
				// made a DP release (no exact figure in lineage) where the
				// steward report holding it is.
				if snap, _ := e.Run.Facets["veil_privacy"]["consentSnapshot"].(string); len(snap) != 64 {
					if st, _ := e.Run.Facets["veil_privacy"]["stewardReport"].(string); st == "" || snap != "" {
						t.Errorf("step %s: consent snapshot %q, steward report %q", e.Job.Name, snap, st)
					}
				}
				if o := e.Outputs[0].Facets; o["columnLineage"] == nil || o["schema"] == nil || o["dataSource"] == nil {
					t.Errorf("step %s output facets: %v", e.Job.Name, o)
				}
				if e.Job.Facets["ownership"] == nil || e.Job.Facets["documentation"] == nil {
					t.Errorf("step %s job facets: %v", e.Job.Name, e.Job.Facets)
				}
				if e.Job.Name == "nightly.recs" && e.Run.Facets["veil_privacy"]["dpsgd"] == nil {
					t.Errorf("the training step's veil_privacy facet lacks dpsgd: %v", e.Run.Facets["veil_privacy"])
				}
			}
		}
	}
	for _, k := range []string{"nightly START", "nightly COMPLETE", "nightly.cohorts START", "nightly.cohorts COMPLETE", "nightly.more START", "nightly.more COMPLETE",
		"nightly.recs START", "nightly.recs COMPLETE"} {
		if kinds[k] != 1 {
			t.Errorf("%d %q events: %v", kinds[k], k, kinds)
		}
	}
	for _, s := range res.Steps {
		if !outputs[strings.TrimPrefix(s.Output, "file://")] {
			t.Errorf("output %s of step %s is in no COMPLETE event", s.Output, s.Step)
		}
	}
	recs, err := lineage.OpenAudit(store, "audit").Verify(ctx)
	if err != nil || len(recs) != 5 || recs[4].Outcome != "completed" {
		t.Fatalf("audit: %v %+v", err, recs)
	}
	// A refused step: FAIL events, and the audit log says so.
	spec.Steps[0].Segment.Budget.Epsilon = 0.01
	if _, err := Run(ctx, spec, Options{LogicalDate: day.AddDate(0, 0, -2)}); err == nil {
		t.Fatal("a run over budget succeeded")
	}
	recs, _ = lineage.OpenAudit(store, "audit").Verify(ctx)
	if last := recs[len(recs)-1]; last.Outcome != "failed" || !strings.Contains(last.Error, "budget") {
		t.Errorf("last audit record %+v", last)
	}
}
