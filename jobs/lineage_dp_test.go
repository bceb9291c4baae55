package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage/lineagetest"
)

// Lineage goes to any configured HTTP endpoint: the events of a DP step
// carry no exact count (no outputStatistics or dataQualityMetrics row
// count, no rows or subjects in veil_privacy), only where the steward
// report is, and stay valid OpenLineage 2-0-2. A step without any DP
// release (plain k-means with exact sizes) keeps its counts.
func TestLineageOfDPStepsHoldsNoExactCounts(t *testing.T) {
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = 500, 150, 10
	s, _ := synth.New(cfg)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(ctx, store, "", "test"); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`name: nightly
state: %[1]s/state
purposes: [segmentation, marketing, personalization]
steps:
  - name: plain
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/plain
      kmeans: {k: "3", n_init: 1, seed: 1}
      cohort_floor: {min_size: 5, small: merge}
  - name: dp
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/dp
      kmeans: {k: "3", n_init: 1, seed: 1}
      cohort_floor: {min_size: 5, small: merge}
      noisy_sizes_sigma: 1
      privacy: {epsilon: 8, delta: 1.0e-6, iterations: 3, accountant: rdp}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: 100, delta: 1.0e-3, period: total}
  - name: recs
    train:
      events: %[1]s/shop/events
      catalog: %[1]s/shop/catalog
      output: %[1]s/out/models
      model: {dim: 4, epsilon: 4, accountant: rdp, epochs: 1}
      evaluation: {baselines: false}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: 100, delta: 1.0e-3, period: total}
`, dir)
	path := filepath.Join(dir, "spec.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, spec, Options{LogicalDate: day, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	v, err := lineagetest.New("..")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := dataset.NewFileStore(filepath.Join(dir, "state"))
	seen := map[string]bool{}
	for info, err := range state.List(ctx, "lineage/") {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := dataset.ReadAll(ctx, state, info.Key)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", info.Key, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var e struct {
				EventType string
				Job       struct{ Name string }
				Run       struct {
					Facets map[string]map[string]any
				}
			}
			json.Unmarshal([]byte(line), &e)
			if e.EventType != "COMPLETE" || !strings.HasPrefix(e.Job.Name, "nightly.") {
				continue
			}
			seen[e.Job.Name] = true
			p := e.Run.Facets["veil_privacy"]
			switch e.Job.Name {
			case "nightly.plain":
				if _, ok := p["rowsRead"]; !ok || !strings.Contains(line, `"rowCount"`) {
					t.Errorf("the lineage of a step without DP release lost its exact counts: %s", line)
				}
			default:
				for _, k := range []string{`"rowCount"`, `"rowsRead"`, `"rowsKept"`, `"rowsDropped"`, `"subjectsKept"`, `"consentRecords"`, `"consentSnapshot"`, `"size"`} {
					if strings.Contains(line, k) {
						t.Errorf("the lineage of DP step %s holds %s: %s", e.Job.Name, k, line)
					}
				}
				// The contributors filter's size is a function of the exact
				// number of subjects (a power of two at least as large): a
				// subject can tip it over a boundary.
				if c := e.Run.Facets["veil_contributors"]; c == nil || c["capacity"] != nil || c["bits"] != nil || c["hashes"] != nil {
					t.Errorf("the lineage of DP step %s gives the contributors filter's size (or no filter): %v", e.Job.Name, c)
				}
				if st, _ := p["stewardReport"].(string); !strings.Contains(st, "dt=2026-11-27") {
					t.Errorf("the lineage of DP step %s does not say where the steward report is: %v", e.Job.Name, p)
				}
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("COMPLETE events of %v", seen)
	}
}
