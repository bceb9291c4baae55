package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/segment"
)

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

var day = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func shop(t *testing.T, subjects, days int) string {
	t.Helper()
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = subjects, 300, days
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(context.Background(), store, "", "test"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// execute runs a pipeline on Prism, as veil-beam does, leaving no temporary
// files behind.
var execute = PrivateTemp(func(ctx context.Context, p *beam.Pipeline) error { return ptest.Run(p) })

// The Beam pipeline on Prism writes the table the single-machine veil
// writes on the same input: the same subjects, features to the bit,
// regions, feature names and filter report, and byte-identical shards.
func TestPrepareEqualsSingleMachine(t *testing.T) {
	ctx := context.Background()
	dir := shop(t, 1500, 20)
	cfg := segment.DefaultConfig()
	cfg.Events = filepath.Join(dir, "shop", "events")
	cfg.Output = filepath.Join(dir, "unused")
	cfg.Features.MaxEvents = 25 // heavy subjects are sampled down
	one, err := segment.Prepare(ctx, cfg, day, filepath.Join(dir, "single"), 4, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	beamRep, err := Prepare(ctx, cfg, day, filepath.Join(dir, "beam"), 4, dataset.URLOptions{}, "beam:prism", execute)
	if err != nil {
		t.Fatal(err)
	}
	if one.Bounded == 0 {
		t.Fatal("no subject was sampled down: the test needs heavy subjects")
	}
	if beamRep.Engine != "beam:prism" || beamRep.Subjects != one.Subjects || beamRep.EventsUsed != one.EventsUsed || beamRep.Bounded != one.Bounded {
		t.Errorf("beam report %+v\nsingle-machine %+v", beamRep, one)
	}
	if !reflect.DeepEqual(beamRep.Filter, one.Filter) {
		t.Errorf("filter report on beam:\n%+v\non one machine:\n%+v", beamRep.Filter, one.Filter)
	}
	read := func(rep *segment.PrepareReport) (*segment.Features, *dataset.Manifest) {
		ref, err := open.Ref(ctx, rep.Output, dataset.URLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := segment.ReadPrepared(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		return f, m
	}
	fb, mb := read(beamRep)
	fo, mo := read(one)
	if !slices.Equal(fb.Subjects, fo.Subjects) || !slices.Equal(fb.Regions, fo.Regions) || !slices.Equal(fb.Names, fo.Names) {
		t.Fatal("subjects, regions or feature names differ")
	}
	for i := range fb.Raw.Data {
		if math.Float32bits(fb.Raw.Data[i]) != math.Float32bits(fo.Raw.Data[i]) {
			t.Fatalf("subject %s feature %d: %v on beam, %v on one machine", fb.Subjects[i/fb.Raw.D], i%fb.Raw.D, fb.Raw.Data[i], fo.Raw.Data[i])
		}
	}
	for i := range 4 {
		fb, okb := mb.Find(segment.ShardFile(i))
		fo, oko := mo.Find(segment.ShardFile(i))
		if !okb || !oko || fb.SHA256 != fo.SHA256 || fb.Rows != fo.Rows {
			t.Errorf("shard %d: beam %+v, one machine %+v", i, fb, fo)
		}
	}
	if mb.Producer != "veil-beam prepare" || mb.Contract != "subject_features" {
		t.Errorf("manifest %+v", mb)
	}
	// No file of the write outside the manifest.
	entries, _ := os.ReadDir(filepath.Join(dir, "beam", "dt=2026-11-27"))
	if len(entries) != len(mb.Files)+1 {
		t.Errorf("%d files in the table's folder, %d in the manifest", len(entries), len(mb.Files))
	}
}
