package pipeline

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
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
	ref, _ := dataset.ParseRef(ctx, prep.Output, dataset.URLOptions{})
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
		ref, _ := dataset.ParseRef(ctx, rep.Output, dataset.URLOptions{})
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

	// Noisy sizes: spent before reading, once per run id, released once.
	cfg.NoisySizes = 3
	cfg.Budget = &budget.Config{Ledger: filepath.Join(dir, "ledger"), Dataset: "shop", Policy: budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "total"}}
	cfg.RunID = "beam-noisy"
	noisy, err := Assign(ctx, cfg, day, prep.Output, model, Options{Engine: "beam:prism", Execute: execute})
	if err != nil {
		t.Fatal(err)
	}
	if noisy.Spent == nil || !(noisy.Spent.Epsilon > 0) {
		t.Fatalf("no spend recorded: %+v", noisy.Spent)
	}
	for _, c := range noisy.Cohorts {
		if c.NoisySize == nil {
			t.Errorf("cohort %d has no noisy size", c.ID)
		}
	}
	store, _ := dataset.OpenStore(ctx, cfg.Budget.Ledger, dataset.URLOptions{})
	recs, err := budget.Open(store, "").Records(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].RunID != "beam-noisy" {
		t.Errorf("ledger records %+v", recs)
	}
}
