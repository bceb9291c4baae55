package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/train"
)

// TestTrainChargeAgrees runs a training step with the privacy-utility curve
// and the privacy audit and checks that the ledger record, the lineage
// veil_privacy facet, the steward report and the public model card state
// the same charge, to the last digit, and the same breakdown by release,
// with the model's own guarantee apart.
func TestTrainChargeAgrees(t *testing.T) {
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
steps:
  - name: recs
    train:
      events: %[1]s/shop/events
      catalog: %[1]s/shop/catalog
      output: %[1]s/out/models
      model: {dim: 4, epsilon: 4, accountant: rdp, epochs: 1}
      evaluation: {curve: true, curve_epsilons: [2], baselines: false, privacy_audit: {canaries: 50, canary_items: 2}}
      budget: {ledger: %[1]s/ledger, dataset: shop-models, epsilon: 40, delta: 1.0e-5, period: total}
`, dir)
	path := filepath.Join(dir, "spec.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, spec, Options{LogicalDate: day, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Steps[0].Train
	ls, _ := dataset.NewFileStore(filepath.Join(dir, "ledger"))
	recs, err := budget.Open(ls, "").Records(ctx, "shop-models")
	if err != nil || len(recs) != 1 {
		t.Fatalf("ledger: %v %v", recs, err)
	}
	rec := recs[0]
	full := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

	// The lineage facet of the step.
	v, err := lineagetest.New("..")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := dataset.NewFileStore(filepath.Join(dir, "state"))
	var facet struct {
		Epsilon  float64 `json:"epsilon"`
		Delta    float64 `json:"delta"`
		Releases []struct {
			Release string  `json:"release"`
			Epsilon float64 `json:"epsilon"`
		} `json:"releases"`
		DPSGD struct {
			Epsilon float64 `json:"modelEpsilon"`
			Delta   float64 `json:"modelDelta"`
		} `json:"dpsgd"`
	}
	found := false
	for info, err := range state.List(ctx, "lineage/") {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := dataset.ReadAll(ctx, state, info.Key)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", info.Key, err)
		}
		var e struct {
			EventType string
			Job       struct{ Name string }
			Run       struct {
				Facets map[string]json.RawMessage
			}
		}
		json.Unmarshal(data, &e)
		if e.Job.Name == "nightly.recs" && e.EventType == "COMPLETE" {
			found = true
			if err := json.Unmarshal(e.Run.Facets["veil_privacy"], &facet); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Fatal("no COMPLETE event of the training step")
	}
	if facet.Epsilon != rec.Epsilon || facet.Delta != rec.Delta {
		t.Errorf("lineage says (ε %v, δ %v), the ledger (ε %v, δ %v)", facet.Epsilon, facet.Delta, rec.Epsilon, rec.Delta)
	}
	if g := rep.Guarantee; g == nil || facet.DPSGD.Epsilon != g.Epsilon || facet.DPSGD.Delta != g.Delta || g.Epsilon == rec.Epsilon {
		t.Errorf("lineage model guarantee (ε %v, δ %v), report %+v, ledger ε %v", facet.DPSGD.Epsilon, facet.DPSGD.Delta, g, rec.Epsilon)
	}
	// model, one curve point, the audit's run: each a histogram and DP-SGD
	// (the catalog fixes the items: no partition selection)
	if len(facet.Releases) != 6 {
		t.Fatalf("lineage releases %+v", facet.Releases)
	}

	// The steward report and the public card.
	read := func(loc, name string) []byte {
		ref, err := open.Ref(ctx, loc, dataset.URLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := dataset.VerifyManifest(ctx, ref.Store, ref.Key)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := m.Find(name)
		if !ok {
			t.Fatalf("%s lacks %s", loc, name)
		}
		b, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A pipeline's steward reports live in its state store, never next to
	// the releases.
	if want := filepath.Join(dir, "state", "steward"); !strings.HasPrefix(rep.Steward, want) && !strings.HasPrefix(rep.Steward, "file://"+want) {
		t.Errorf("steward report at %s, want under %s", rep.Steward, want)
	}
	var sr train.Report
	if err := json.Unmarshal(read(rep.Steward, train.StewardReportFile), &sr); err != nil || sr.Charged == nil {
		t.Fatalf("steward report: %v", err)
	}
	if sr.Charged.Epsilon != rec.Epsilon || sr.Charged.Delta != rec.Delta || sr.Spent == nil || sr.Spent.Epsilon != rec.Epsilon {
		t.Errorf("steward report charges %+v, the ledger (ε %v, δ %v)", sr.Charged, rec.Epsilon, rec.Delta)
	}
	var card struct {
		Q struct {
			M []struct{ Type, Value, Slice string } `json:"performance_metrics"`
		} `json:"quantitative_analysis"`
	}
	if err := json.Unmarshal(read(rep.Output, train.CardJSONFile), &card); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, m := range card.Q.M {
		values[m.Slice+" "+m.Type] = m.Value
	}
	for i, r := range facet.Releases {
		if sr.Charged.Releases[i].Release != r.Release || sr.Charged.Releases[i].Epsilon != r.Epsilon {
			t.Errorf("release %d: lineage %+v, steward report %+v", i, r, sr.Charged.Releases[i])
		}
		if got := values["release: "+r.Release+" ε"]; got != full(r.Epsilon) {
			t.Errorf("card: release %s ε %q, lineage %v", r.Release, got, r.Epsilon)
		}
	}
	charged := false
	for k, val := range values {
		if strings.HasPrefix(k, "budget charged") && strings.HasSuffix(k, " ε") {
			charged = val == full(rec.Epsilon)
		}
	}
	if !charged || values["this model's own guarantee ε"] != full(rep.Guarantee.Epsilon) {
		t.Errorf("card figures %v; ledger ε %v", values, rec.Epsilon)
	}
}
