package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train/mf"
)

// InteractionsContract is the schema of a plain interactions file for
// veil train mf: who touched what, optionally when and how much.
var InteractionsContract = &dataset.Contract{Name: "interactions", Version: 1, Columns: []dataset.Column{
	{Name: "subject_id", Kind: dataset.KindString, Doc: "who"},
	{Name: "item_id", Kind: dataset.KindString, Doc: "what"},
	{Name: "event_time", Kind: dataset.KindTimestamp, Nullable: true, Doc: "when (orders the holdout)"},
	{Name: "weight", Kind: dataset.KindDouble, Nullable: true, Doc: "how much (default 1)"},
	{Name: "event_type", Kind: dataset.KindString, Nullable: true, Doc: "kind of interaction, to select some"},
}}

// ReadFile reads interactions from a CSV or Parquet file (by its magic
// bytes) or a table of Parquet files at a URL or path; with types, only rows whose event_type is one of
// them.
func ReadFile(ctx context.Context, url string, types []string, opt dataset.URLOptions) (*mf.Data, error) {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	data, err := dataset.ReadAll(ctx, ref.Store, ref.Key)
	if errors.Is(err, dataset.ErrNotExist) {
		// A table: every Parquet file under the prefix.
		keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
		if err != nil {
			return nil, err
		}
		return readParquet(ctx, ref, keys, types)
	}
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("PAR1")) {
		return readParquet(ctx, ref, []string{ref.Key}, types)
	}
	return mf.ReadCSV(bytes.NewReader(data), ref.String(), types)
}

func readParquet(ctx context.Context, ref dataset.Ref, keys, types []string) (*mf.Data, error) {
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, InteractionsContract, "subject_id", "item_id", "event_time", "weight", "event_type")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", mf.ErrInput, err)
	}
	defer sc.Close()
	b := mf.NewBuilder()
	var batch dataset.Batch
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &batch); err != nil {
			return nil, fmt.Errorf("%w: %w", mf.ErrInput, err)
		}
		subj, item := batch.Column("subject_id").Str, batch.Column("item_id").Str
		at, wt, typ := batch.Column("event_time"), batch.Column("weight"), batch.Column("event_type").Str
		keepType := make([]bool, len(typ.Dict))
		for k, t := range typ.Dict {
			keepType[k] = slices.Contains(types, t)
		}
		for i, s := range subj.Index {
			if len(types) > 0 && (len(typ.Index) <= i || typ.Index[i] < 0 || !keepType[typ.Index[i]]) {
				continue
			}
			w := 1.0
			if len(wt.Float) > i && !wt.Null(i) {
				w = wt.Float[i]
			}
			var t time.Time
			if len(at.Int) > i && !at.Null(i) {
				t = time.UnixMicro(at.Int[i])
			}
			if s < 0 || item.Index[i] < 0 {
				return nil, fmt.Errorf("%w: %s row group %d row %d: empty subject_id or item_id", mf.ErrInput, ref, u.RowGroup, i)
			}
			if err := b.Add(subj.Dict[s], item.Dict[item.Index[i]], w, t); err != nil {
				return nil, fmt.Errorf("%s row group %d row %d: %w", ref, u.RowGroup, i, err)
			}
		}
	}
	d, err := b.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return d, nil
}

// ReadCatalog reads the item ids of a product catalog (the catalog
// contract: a Parquet file or a table of them at a URL or path), in file
// order without repeats. The catalog is public: reading it spends nothing.
// It must be one: a catalog that is not (release.CheckCatalog: no catalog
// manifest, subject ids, or a part of the job's tables) is refused with
// release.ErrNotCatalog before it is read.
func ReadCatalog(ctx context.Context, url string, tables privacy.JobTables, opt dataset.URLOptions) ([]string, error) {
	if err := release.CheckCatalog(ctx, url, tables, opt); err != nil {
		return nil, err
	}
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	keys := []string{ref.Key}
	if _, err := ref.Store.Stat(ctx, ref.Key); errors.Is(err, dataset.ErrNotExist) {
		if keys, err = dataset.Inputs(ctx, ref, dataset.Window{}); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", ref, err)
		}
	} else if err != nil {
		return nil, err
	}
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, dataset.CatalogContract, "item_id")
	if err != nil {
		return nil, fmt.Errorf("%w: catalog %s: %w", mf.ErrInput, ref, err)
	}
	defer sc.Close()
	var ids []string
	var batch dataset.Batch
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &batch); err != nil {
			return nil, fmt.Errorf("%w: catalog %s: %w", mf.ErrInput, ref, err)
		}
		col := batch.Column("item_id").Str
		for _, k := range col.Index {
			if k >= 0 {
				ids = append(ids, col.Dict[k])
			}
		}
	}
	ids = mf.CatalogItems(ids)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: catalog %s has no items", mf.ErrInput, ref)
	}
	return ids, nil
}
