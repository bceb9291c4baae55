package pipeline

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/train"
)

// The interactions table of Prism equals the single machine's: the same
// rows (byte-identical shards), the same filter report, and it reads back
// as the interactions the training job loads.
func TestPrepareInteractionsEqualsSingleMachine(t *testing.T) {
	ctx := context.Background()
	dir := shop(t, 1200, 20)
	cfg := train.DefaultJobConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "unused")
	cfg.Interactions.EventWeights = map[string]float64{"view": 1, "add_to_cart": 2, "purchase": 4}
	one, err := train.PrepareInteractions(ctx, cfg, day, filepath.Join(dir, "single"), 4, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	onBeam, err := PrepareInteractions(ctx, cfg, day, filepath.Join(dir, "beam"), Options{Shards: 4, Engine: "beam:prism", Execute: execute})
	if err != nil {
		t.Fatal(err)
	}
	if onBeam.Subjects != one.Subjects || onBeam.Interactions != one.Interactions || !reflect.DeepEqual(onBeam.Filter, one.Filter) {
		t.Errorf("beam report %+v\nsingle-machine %+v", onBeam, one)
	}
	manifest := func(rep *train.InteractionsReport) *dataset.Manifest {
		ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mb, mo := manifest(onBeam), manifest(one)
	for i := range 4 {
		fb, okb := mb.Find(train.InteractionsShardFile(i))
		fo, oko := mo.Find(train.InteractionsShardFile(i))
		if !okb || !oko || fb.SHA256 != fo.SHA256 || fb.Rows == 0 {
			t.Errorf("shard %d: beam %+v, one machine %+v", i, fb, fo)
		}
	}
	got, err := train.ReadFile(ctx, onBeam.Output, nil, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := train.OpenFiltered(ctx, cfg, day, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := train.LoadEvents(ctx, f.Inputs.Policy, f.Filter, f.Inputs.Events, cfg.Interactions, day, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("the Beam table does not read back as the loaded interactions")
	}
}
