package release

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/privacy"
)

// A catalog is the shop's product list, public by declaration: only a
// table whose manifest declares the catalog contract, names no population,
// has no subject ids and is apart from the job's tables of subjects passes.
func TestCheckCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = 50, 60, 2
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := dataset.NewFileStore(dir)
	if _, err := s.Write(ctx, store, "shop", "test"); err != nil {
		t.Fatal(err)
	}
	// Catalog-shaped tables that are not the shop's catalog.
	write := func(name string, population bool, rows any) {
		out, err := dataset.NewOutput(ctx, store, name, dataset.CatalogContract, "test")
		if err != nil {
			t.Fatal(err)
		}
		if population {
			out.NewPopulation()
		}
		switch r := rows.(type) {
		case []dataset.CatalogItem:
			err = dataset.PutParquet(ctx, out, "part-0.parquet", r)
		case []dataset.Event:
			err = dataset.PutParquet(ctx, out, "part-0.parquet", r)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := out.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	write("population", true, s.Catalog())
	write("subjects", false, []dataset.Event{{SubjectID: "s1", ItemID: "i1", EventType: "view", Category: ptr("c")}})
	em, err := dataset.ReadManifest(ctx, store, "shop/events")
	if err != nil {
		t.Fatal(err)
	}
	cm, err := dataset.ReadManifest(ctx, store, "shop/catalog")
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "shop", "events")
	tables := privacy.JobTables{Events: events}
	for _, tc := range []struct {
		name, catalog string
		tables        privacy.JobTables
		words         string // "" when accepted
	}{
		{"the shop's catalog", filepath.Join(dir, "shop", "catalog"), tables, ""},
		{"a file of the catalog", filepath.Join(dir, "shop", "catalog", cm.Files[0].Key), tables, ""},
		{"the events", events, tables, "subjects' data"},
		{"the events, spelt otherwise", "file://" + events + "/", tables, "subjects' data"},
		{"a file of the events", filepath.Join(events, em.Files[0].Key), tables, "subjects' data"},
		{"a partition of the events", filepath.Join(events, filepath.Dir(em.Files[0].Key)), tables, "subjects' data"},
		{"the folder of the events", filepath.Join(dir, "shop"), tables, "subjects' data"},
		{"the consent table", filepath.Join(dir, "shop", "consent"), tables, "subjects' data"},
		{"the events of a job on a part of them", events, privacy.JobTables{Events: filepath.Join(events, em.Files[0].Key)}, "subjects' data"},
		{"the events of a job that names no tables", events, privacy.JobTables{}, "events contract"},
		{"a table without a catalog manifest", filepath.Join(dir, "shop", "truth"), tables, "no contract"},
		{"a catalog naming a population", filepath.Join(dir, "population"), tables, "population"},
		{"a catalog with subject ids", filepath.Join(dir, "subjects"), tables, "subject_id column"},
	} {
		err := CheckCatalog(ctx, tc.catalog, tc.tables, dataset.URLOptions{})
		switch {
		case tc.words == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.words == "":
		case !errors.Is(err, ErrNotCatalog) || !strings.Contains(err.Error(), tc.catalog) || !strings.Contains(err.Error(), tc.words):
			t.Errorf("%s: %v; want ErrNotCatalog naming %s and saying %q", tc.name, err, tc.catalog, tc.words)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// A public data set that is a plain file (no veil table holds it) makes
// its folder no table of subjects: a catalog beside it is accepted.
func TestCheckCatalogBesideAPlainFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, _ := dataset.NewFileStore(dir)
	out, err := dataset.NewOutput(ctx, store, "catalog", dataset.CatalogContract, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.PutParquet(ctx, out, "part-0.parquet", []dataset.CatalogItem{{ItemID: "i1", Category: "c"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := dataset.PutBytes(ctx, store, "ratings.csv", []byte("subject_id,item_id\ns1,i1\n")); err != nil {
		t.Fatal(err)
	}
	tables := privacy.JobTables{Events: filepath.Join(dir, "ratings.csv")}
	if err := CheckCatalog(ctx, filepath.Join(dir, "catalog"), tables, dataset.URLOptions{}); err != nil {
		t.Errorf("a catalog beside a plain data file: %v", err)
	}
}
