package pipeline

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// Assignments on Prism equal the single machine's for the same centroids:
// the same subjects in the same cohorts at the same distances, the same
// floor and counts. With noisy sizes, the ledger records the release once
// and every cohort carries a noisy size.
func TestAssignEqualsSingleMachine(t *testing.T) {
	ctx := context.Background()
	dir := shop(t, 1500, 20)
	cfg := segment.DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "7"
	cfg.Floor = segment.Floor{MinSize: 120, Small: "merge"}
	prep, err := segment.Prepare(ctx, cfg, day, filepath.Join(dir, "prepared"), 3, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := open.Ref(ctx, prep.Output, dataset.URLOptions{})
	model, _, err := segment.Fit(ctx, cfg, ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunID = "single"
	one, err := segment.AssignPrepared(ctx, cfg, day, prep.Output, model, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunID = "beam"
	onBeam, err := Assign(ctx, cfg, day, prep.Output, model, Options{Engine: "beam:prism", Execute: execute})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Cohorts) >= 7 {
		t.Fatalf("%d cohorts: the floor merged none; the test needs merges", len(one.Cohorts))
	}
	if !reflect.DeepEqual(onBeam.Cohorts, one.Cohorts) || onBeam.Subjects != one.Subjects || onBeam.Exported != one.Exported ||
		onBeam.Suppressed != one.Suppressed || !reflect.DeepEqual(onBeam.NotExported, one.NotExported) {
		t.Errorf("beam report %+v\nsingle-machine %+v", onBeam, one)
	}
	rows := func(rep *segment.AssignReport) []dataset.CohortAssignment {
		ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		if err != nil {
			t.Fatal(err)
		}
		var out []dataset.CohortAssignment
		shards := 0
		for _, f := range m.Files {
			if !strings.HasPrefix(f.Key, "assignments-") {
				continue
			}
			shards++
			pf, err := dataset.OpenParquet(ctx, ref.Store, dataset.Join(ref.Key, f.Key), dataset.CohortAssignmentsContract)
			if err != nil {
				t.Fatal(err)
			}
			dataset.ReadRows(ctx, pf, func(rs []dataset.CohortAssignment) error {
				for _, r := range rs {
					if r.RunID != rep.RunID {
						t.Errorf("row of run %s in run %s", r.RunID, rep.RunID)
					}
					r.RunID = ""
					out = append(out, r)
				}
				return nil
			})
			pf.Close()
		}
		if shards != 3 {
			t.Errorf("%s: %d shards, want 3", rep.Output, shards)
		}
		slices.SortFunc(out, func(a, b dataset.CohortAssignment) int { return strings.Compare(a.SubjectID, b.SubjectID) })
		return out
	}
	rb, ro := rows(onBeam), rows(one)
	if len(rb) != len(ro) || int64(len(rb)) != one.Exported {
		t.Fatalf("%d rows on beam, %d on one machine, %d exported", len(rb), len(ro), one.Exported)
	}
	for i := range rb {
		if rb[i].SubjectID != ro[i].SubjectID || rb[i].CohortID != ro[i].CohortID || math.Float64bits(rb[i].Distance) != math.Float64bits(ro[i].Distance) {
			t.Fatalf("row %d: beam %+v, one machine %+v", i, rb[i], ro[i])
		}
	}

	// Noisy sizes next to an exact model: no DP release, so nothing is
	// charged; the release holds noisy sizes only, the steward report the
	// exact ones, on both engines alike.
	cfg.NoisySizes = 3
	cfg.Budget = &budget.Config{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "total"}}
	cfg.RunID = "beam-noisy"
	noisy, err := Assign(ctx, cfg, day, prep.Output, model, Options{Engine: "beam:prism", Execute: execute})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunID = "single-noisy"
	oneNoisy, err := segment.AssignPrepared(ctx, cfg, day, prep.Output, model, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*segment.AssignReport{noisy, oneNoisy} {
		if !strings.Contains(r.NotDP, "no privacy budget was charged") || !r.NoisySizes || r.StewardReport == "" {
			t.Errorf("%s report %+v", r.Engine, r)
		}
		for _, c := range r.Cohorts {
			if c.NoisySize == nil || c.Size == 0 {
				t.Errorf("%s: cohort %+v lacks its noisy or (steward) exact size", r.Engine, c)
			}
		}
		ref, _ := open.Ref(ctx, r.Output, dataset.URLOptions{})
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		if err != nil || m.Class != dataset.ClassRelease {
			t.Errorf("%s: release class %v (%v)", r.Engine, m, err)
		}
		sref, _ := open.Ref(ctx, r.StewardReport, dataset.URLOptions{})
		if m, err := dataset.ReadManifest(ctx, sref.Store, sref.Key); err != nil || m.Class != dataset.ClassSteward {
			t.Errorf("%s: steward report %v (%v)", r.Engine, m, err)
		}
	}
	exact := func(cs []segment.CohortSize) (out []segment.CohortSize) {
		for _, c := range cs {
			c.NoisySize = nil // drawn per run
			out = append(out, c)
		}
		return out
	}
	if !reflect.DeepEqual(exact(noisy.Cohorts), exact(oneNoisy.Cohorts)) && len(noisy.Cohorts) == len(oneNoisy.Cohorts) {
		// The floor is planned on noisy sizes, drawn per run: the plans
		// may differ; only compare when they agree on the clusters.
		same := true
		for i := range noisy.Cohorts {
			same = same && slices.Equal(noisy.Cohorts[i].Clusters, oneNoisy.Cohorts[i].Clusters)
		}
		if same {
			t.Errorf("beam cohorts %+v\nsingle-machine %+v", noisy.Cohorts, oneNoisy.Cohorts)
		}
	}
	store, _ := open.Store(ctx, cfg.Budget.Ledger, dataset.URLOptions{})
	if recs, err := budget.Open(store, "").Records(ctx, "shop"); len(recs) != 0 {
		t.Errorf("assign charged the ledger: %+v (%v)", recs, err)
	}
}

// veil-beam assign refuses a DP job, as veil segment assign does: the
// model is exact, so the DP path does not exist here.
func TestAssignRefusesPrivacy(t *testing.T) {
	dir := t.TempDir()
	cfg := segment.DefaultConfig()
	cfg.Events = filepath.Join(dir, "events")
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "3"
	cfg.NoisySizes = 1
	cfg.Privacy = &kmeans.DPConfig{Epsilon: 8, Delta: 1e-6, Iterations: 4, Accountant: "rdp"}
	cfg.Budget = &budget.Config{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 100, Delta: 1e-3, Period: "total"}}
	m := &segment.Model{Features: []segment.Feature{{Name: "a"}}, Mean: []float64{0}, Std: []float64{1}, Centroids: [][]float32{{0}}}
	if _, err := Assign(context.Background(), cfg, day, filepath.Join(dir, "prepared"), m, Options{Engine: "beam:prism", Execute: execute}); !errors.Is(err, segment.ErrConfig) {
		t.Errorf("assign with privacy: %v, want ErrConfig", err)
	}
}
