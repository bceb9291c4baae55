package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/release"
)

var ctx = context.Background()

func sampleEvents() []Event {
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	at := time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC)
	start := NewEvent("START", at, "01a22487-580a-7f3d-95cf-58fa0fa2557b", "nightly")
	start.Run.Facets["nominalTime"] = NominalTime(day)
	start.Run.Facets["processing_engine"] = ProcessingEngine("0.1.0-dev")
	start.Job.Facets["jobType"] = JobType("PIPELINE")
	step := NewEvent("COMPLETE", at.Add(time.Minute), "51921ab7-c488-51f0-a5d6-30640357b473", "nightly.cohorts")
	step.Run.Facets["parent"] = Parent(start.Run.RunID, "nightly")
	step.Run.Facets["veil_privacy"] = Privacy{Purposes: []string{"segmentation", "marketing"}, LogicalDate: "2026-11-27", RowsRead: 100, RowsKept: 60,
		RowsDropped: map[string]int64{"denied": 40}, SubjectsKept: 10, ConsentRecords: 50, Epsilon: 0.8, Delta: 1e-6, Accountant: "pld", CohortFloor: 50,
		ConsentSnapshot: "9f2c1e0d8b7a69584736251403f2e1d0c9b8a79685746352413020f1e2d3c4b5"}.Facet()
	step.Job.Facets["documentation"] = Documentation("Segment subjects into cohorts.")
	step.Job.Facets["ownership"] = Ownership("team:data")
	step.Run.Facets["veil_contributors"] = Contributors{Filter: "file:///srv/veil/out/cohorts/dt=2026-11-27/run=51921ab7/contributors-0f3a.bloom",
		Subjects: 10, FPR: 0.0098, Bits: 128, Hashes: 7}.Facet()
	in := DatasetFromURL("s3://shop-data/events")
	in.Facets = map[string]Facet{"dataSource": DataSource("s3://shop-data/events"), "schema": Schema(dataset.EventsContract)}
	in.InputFacets = map[string]Facet{"dataQualityMetrics": DataQualityMetrics(100)}
	out := DatasetFromURL("file:///srv/veil/out/cohorts/dt=2026-11-27/run=51921ab7")
	out.Facets = map[string]Facet{"dataSource": DataSource("/srv/veil/out/cohorts/dt=2026-11-27/run=51921ab7"), "schema": Schema(dataset.CohortAssignmentsContract),
		"columnLineage": ColumnLineage(map[string][]InputField{
			"subject_id": {{Dataset: in, Field: "subject_id", Type: "DIRECT", Subtype: "IDENTITY"}},
			"cohort_id":  {{Dataset: in, Field: "event_type", Type: "DIRECT", Subtype: "AGGREGATION"}},
		}, []InputField{{Dataset: in, Field: "subject_id", Type: "INDIRECT", Subtype: "FILTER", Describes: "consent"}})}
	out.OutputFacets = map[string]Facet{"outputStatistics": OutputStatistics(60, 4096, 7)}
	step.Inputs, step.Outputs = []Dataset{in}, []Dataset{out}
	recs := NewEvent("COMPLETE", at.Add(90*time.Second), "51921ab7-c488-51f0-a5d6-30640357b474", "nightly.recs")
	recs.Run.Facets["parent"] = Parent(start.Run.RunID, "nightly")
	recs.Run.Facets["veil_privacy"] = Privacy{Purposes: []string{"personalization"}, LogicalDate: "2026-11-27", RowsRead: 100, RowsKept: 70,
		RowsDropped: map[string]int64{"denied": 30}, SubjectsKept: 12, ConsentRecords: 50, Epsilon: 12.417583920411234, Delta: 1e-5, Accountant: "rdp",
		Releases: []release.Share{{Release: "DP-SGD on item factors and biases (per-subject clipping)", Epsilon: 9.87, Events: 1}, {Release: "privacy-utility curve point ε 4", Epsilon: 4.91, Events: 1}},
		DPSGD:    &DPSGD{Unit: "subject", NoiseMultiplier: 0.71, SamplingRate: 0.4, Steps: 5, ClipNorm: 1, MaxInteractions: 200, Epsilon: 7.98, Delta: 1e-6}}.Facet()
	fail := NewEvent("FAIL", at.Add(2*time.Minute), start.Run.RunID, "nightly")
	fail.Run.Facets["errorMessage"] = ErrorMessage("step cohorts: privacy budget exhausted")
	return []Event{start, step, fail, recs}
}

func TestEventsValidate(t *testing.T) {
	v, err := lineagetest.New("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range sampleEvents() {
		data, _ := json.Marshal(ev)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s event: %v\n%s", ev.EventType, err, data)
		}
	}
	// The validator has teeth: a bad event and a bad facet fail.
	bad := sampleEvents()[0]
	bad.Run.RunID = "not-a-uuid"
	data, _ := json.Marshal(bad)
	if err := v.Validate(data); err == nil {
		t.Error("an event with a bad run id validated")
	}
	bad = sampleEvents()[1]
	bad.Run.Facets["veil_privacy"]["purposes"] = []string{"advertising"}
	data, _ = json.Marshal(bad)
	if err := v.Validate(data); err == nil {
		t.Error("a veil_privacy facet with an unknown purpose validated")
	}
	bad = sampleEvents()[3]
	bad.Run.Facets["veil_privacy"]["releases"] = []release.Share{{Epsilon: 1, Events: 1}}
	data, _ = json.Marshal(bad)
	if err := v.Validate(data); err == nil {
		t.Error("a veil_privacy facet with an unnamed release validated")
	}
	bad = sampleEvents()[1]
	bad.Run.Facets["veil_contributors"]["hashes"] = 0
	data, _ = json.Marshal(bad)
	if err := v.Validate(data); err == nil {
		t.Error("a veil_contributors facet with no hashes validated")
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The events' JSON is pinned by a golden file: a change to what stewards'
// tools read shows up in review (go test ./lineage -update rewrites it).
func TestEventsGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, ev := range sampleEvents() {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(data, '\n'))
	}
	golden := filepath.Join("testdata", "events.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./lineage -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("events differ from %s (go test ./lineage -update accepts them):\n%s", golden, buf.String())
	}
}

func TestDatasetNames(t *testing.T) {
	for url, want := range map[string][2]string{
		"file:///data/events": {"file", "/data/events"},
		"s3://bucket/a/b":     {"s3://bucket", "a/b"},
		"relative/path":       {"file", "relative/path"},
	} {
		d := DatasetFromURL(url)
		if d.Namespace != want[0] || d.Name != want[1] {
			t.Errorf("%s: %s %s", url, d.Namespace, d.Name)
		}
	}
}

// The HTTP transport against a real local server that checks what it gets:
// down, then up; nothing is lost and the order is kept.
func TestHTTPTransportSpools(t *testing.T) {
	var mu sync.Mutex
	var got []string
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/api/v1/lineage" || r.Header.Get("Authorization") != "Bearer k3y" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		got = append(got, ev.EventType)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	spool := dataset.NewMemStore(t.Name())
	tr := &HTTPTransport{URL: srv.URL, APIKey: "k3y", Attempts: 2, Backoff: time.Millisecond, Spool: spool, Prefix: "spool"}
	e := &Emitter{Transports: []Transport{tr}}
	evs := sampleEvents()
	e.Emit(ctx, evs[0]) // endpoint down: spooled, the job goes on
	n := 0
	for range spool.List(ctx, "spool/") {
		n++
	}
	if n != 1 {
		t.Fatalf("%d events spooled, want 1", n)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	e.Emit(ctx, evs[1])
	e.Emit(ctx, evs[2])
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "START,COMPLETE,FAIL" {
		t.Errorf("delivered %v", got)
	}
	for info := range spool.List(ctx, "spool/") {
		t.Errorf("left in the spool: %s", info.Key)
	}
}

func TestAuditLog(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	log := OpenAudit(s, "audit")
	for i, outcome := range []string{"started", "completed", "started", "failed"} {
		if err := log.Append(ctx, AuditRecord{Principal: "scheduler", Action: "run", Job: "nightly", RunID: "r", LogicalDate: "2026-11-27", Outcome: outcome, RowsRead: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := log.Verify(ctx)
	if err != nil || len(recs) != 4 || recs[3].Outcome != "failed" {
		t.Fatalf("verify: %v %+v", err, recs)
	}
	key := func(i int) string { return "audit/" + strings.Repeat("0", 9) + string(rune('0'+i)) + ".json" }
	orig := map[int][]byte{}
	for i := 1; i <= 4; i++ {
		orig[i], _ = dataset.ReadAll(ctx, s, key(i))
	}
	restore := func() {
		for i := 1; i <= 4; i++ {
			dataset.PutBytes(ctx, s, key(i), orig[i])
		}
	}
	tamper := map[string]func(){
		"edited": func() {
			dataset.PutBytes(ctx, s, key(2), []byte(strings.Replace(string(orig[2]), "completed", "failed!!!", 1)))
		},
		"deleted":   func() { s.Delete(ctx, key(2)) },
		"reordered": func() { dataset.PutBytes(ctx, s, key(2), orig[3]); dataset.PutBytes(ctx, s, key(3), orig[2]) },
		"inserted":  func() { dataset.PutBytes(ctx, s, key(5), orig[4]) },
	}
	for name, f := range tamper {
		f()
		_, err := log.Verify(ctx)
		if !errors.Is(err, dataset.ErrChainBroken) {
			t.Errorf("%s: %v, want ErrChainBroken", name, err)
		}
		restore()
		s.Delete(ctx, key(5))
	}
	if _, err := log.Verify(ctx); err != nil {
		t.Fatalf("restored log: %v", err)
	}
}
