package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/train"
)

// A segregated pipeline runs every step once per zone: each zone's outputs
// hold only subjects of the zone's jurisdictions (checked against the
// consent records), are written under the zone's own prefix with the
// zone's own envelope key, and do not decrypt with the other zone's key.
func TestSegregatedPipeline(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []struct {
		dir, id string
		b       byte
	}{{"keys-eu", "eu-2026", 0x11}, {"keys-us", "us-2026", 0x22}} {
		os.MkdirAll(filepath.Join(dir, k.dir), 0o700)
		os.WriteFile(filepath.Join(dir, k.dir, k.id+".key"), bytes.Repeat([]byte{k.b}, 32), 0o600)
	}
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "1200", "--items", "150", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: zoned
state: %[1]s/state
segregation:
  by: jurisdiction
  zones:
    - {name: eu, jurisdictions: [GDPR, UK-GDPR], storage: {encryption: {key_id: eu-2026, keys_dir: %[1]s/keys-eu}}}
    - {name: us, jurisdictions: [CCPA, US], storage: {encryption: {key_id: us-2026, keys_dir: %[1]s/keys-us}}}
steps:
  - name: cohorts
    segment: {events: %[1]s/shop/events, output: "%[1]s/out/{zone}/cohorts", kmeans: {k: "3"}, cohort_floor: {min_size: 20, small: merge}}
  - name: recs
    depends_on: [cohorts]
    train:
      events: %[1]s/shop/events
      output: "%[1]s/out/{zone}/models"
      model: {dim: 8, epsilon: 4, accountant: rdp}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: 20, delta: 1.0e-5, period: total}
`, dir)), 0o644)
	code, out, msg := run(t, "run", spec, "--logical-date", "2026-11-27", "--json")
	if code != 0 {
		t.Fatalf("run: %d %s", code, msg)
	}
	var res struct {
		Steps []struct {
			Step    string
			Output  string
			Segment *struct{ Filter privacy.Report }
			// A DP training step prints no filter report: it is in the
			// steward report.
			Train *struct {
				Steward string `json:"steward_report"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.Steps {
		names = append(names, s.Step)
	}
	if want := []string{"cohorts.eu", "recs.eu", "cohorts.us", "recs.us"}; !slices.Equal(names, want) {
		t.Fatalf("steps %v, want %v", names, want)
	}

	// The truth: every subject's jurisdiction from the consent records.
	ctx := context.Background()
	consent, err := open.Ref(ctx, filepath.Join(dir, "shop", "consent"), dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := privacy.BuildConsentIndex(ctx, privacy.DefaultPolicy(), &consent, nil, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string][]string{"eu": {"GDPR", "UK-GDPR"}, "us": {"CCPA", "US"}}
	keyOf := map[string]string{"eu": "eu-2026", "us": "us-2026"}
	for _, s := range res.Steps {
		zone := s.Step[strings.IndexByte(s.Step, '.')+1:]
		if !strings.Contains(s.Output, "/out/"+zone+"/") {
			t.Errorf("%s wrote to %s, outside its zone's prefix", s.Step, s.Output)
		}
		var rep privacy.Report
		file, contract := "assignments.parquet", dataset.CohortAssignmentsContract
		keys := filepath.Join(dir, "keys-"+zone)
		if s.Segment != nil {
			rep = s.Segment.Filter
		} else {
			sref, err := open.Ref(ctx, s.Train.Steward, dataset.URLOptions{Encryption: &dataset.Encryption{Keys: dataset.KeyDir(keys)}})
			if err != nil {
				t.Fatal(err)
			}
			sm, err := dataset.ReadManifest(ctx, sref.Store, sref.Key)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := sm.Find(train.StewardReportFile)
			b, err := dataset.ReadAll(ctx, sref.Store, dataset.Join(sref.Key, f.Key))
			var full struct{ Filter privacy.Report }
			if err != nil || json.Unmarshal(b, &full) != nil {
				t.Fatalf("%s: steward report %s: %v", s.Step, s.Train.Steward, err)
			}
			rep = full.Filter
			file, contract = "recommendations.parquet", dataset.RecommendationsContract
		}
		if !slices.Equal(rep.Jurisdictions, zones[zone]) || rep.SubjectsDropped["other_jurisdiction"] == 0 || rep.SubjectsKept == 0 {
			t.Errorf("%s: filter report jurisdictions %v, kept %d, dropped as other_jurisdiction %d", s.Step, rep.Jurisdictions, rep.SubjectsKept, rep.SubjectsDropped["other_jurisdiction"])
		}
		// Read the output with the zone's key: every subject is the zone's.
		ref, err := open.Ref(ctx, s.Output, dataset.URLOptions{Encryption: &dataset.Encryption{Keys: dataset.KeyDir(keys)}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		if err != nil {
			t.Fatal(err)
		}
		if m.Encryption == nil || m.Encryption.KeyID != keyOf[zone] {
			t.Errorf("%s: manifest encryption %+v, want key %s", s.Step, m.Encryption, keyOf[zone])
		}
		f, ok := m.Find(file)
		if !ok {
			t.Fatalf("%s: no %s", s.Step, file)
		}
		seen := 0
		sc, err := dataset.OpenScan(ctx, ref.Store, []string{dataset.Join(ref.Key, f.Key)}, contract, "subject_id")
		if err != nil {
			t.Fatal(err)
		}
		var b dataset.Batch
		for _, u := range sc.Units() {
			if err := sc.Read(ctx, u, &b); err != nil {
				t.Fatal(err)
			}
			for i := range b.Rows {
				token, _ := b.Column("subject_id").Str.At(i)
				seen++
				if j := ix.Jurisdiction(token); !slices.Contains(zones[zone], j) {
					t.Fatalf("%s: subject %s of jurisdiction %q in the %s output", s.Step, token, j, zone)
				}
			}
		}
		sc.Close()
		if seen == 0 {
			t.Errorf("%s: %s is empty", s.Step, file)
		}
		// The datasheet or the model card says whom the output holds.
		doc := "datasheet.md"
		if s.Train != nil {
			doc = "model_card.md"
		}
		df, _ := m.Find(doc)
		text, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, df.Key))
		if err != nil || !strings.Contains(string(text), strings.Join(zones[zone], " or ")) {
			t.Errorf("%s: %s does not name the zone's jurisdictions (%v)", s.Step, doc, err)
		}
		// The other zone's key cannot read it.
		other := map[string]string{"eu": "us", "us": "eu"}[zone]
		wrong, _ := open.Ref(ctx, s.Output, dataset.URLOptions{Encryption: &dataset.Encryption{Keys: dataset.KeyDir(filepath.Join(dir, "keys-"+other))}})
		if _, err := dataset.ReadAll(ctx, wrong.Store, dataset.Join(wrong.Key, f.Key)); err == nil {
			t.Errorf("%s: %s decrypts with the %s key", s.Step, file, other)
		}
	}

	// The lineage events are valid OpenLineage, and each zone step's
	// veil_privacy facet names the zone's jurisdictions.
	v, err := lineagetest.New("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "state", "lineage", "*", "*", "*.json"))
	withZone := 0
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		var ev struct {
			Job struct{ Name string }
			Run struct {
				Facets struct {
					Privacy *struct{ Jurisdictions []string } `json:"veil_privacy"`
				}
			}
		}
		json.Unmarshal(data, &ev)
		if p := ev.Run.Facets.Privacy; p != nil {
			zone := ev.Job.Name[strings.LastIndexByte(ev.Job.Name, '.')+1:]
			if !slices.Equal(p.Jurisdictions, zones[zone]) {
				t.Errorf("%s: veil_privacy jurisdictions %v, want %v", ev.Job.Name, p.Jurisdictions, zones[zone])
			}
			withZone++
		}
	}
	if withZone != 4 {
		t.Errorf("%d events with the privacy facet, want 4 (one per zone step)", withZone)
	}

	// A spec whose zoned step would write one output for all zones is
	// refused before anything runs.
	bad := strings.Replace(mustRead(t, spec), `/out/{zone}/models`, `/out/models`, 1)
	os.WriteFile(spec, []byte(bad), 0o644)
	if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-28"); code != 2 || !strings.Contains(msg, "share one output") {
		t.Errorf("unzoned output: %d %s", code, msg)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
