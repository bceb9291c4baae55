package segment

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
)

// CatalogCategories reads the category names of a product catalog (the
// catalog contract: a Parquet file or a table of them at a URL or path),
// sorted, without repeats. The catalog is public: reading it spends
// nothing. It must be one: a catalog that is not (release.CheckCatalog: no
// catalog manifest, subject ids, or a part of the job's tables) is refused
// with release.ErrNotCatalog before it is read.
func CatalogCategories(ctx context.Context, url string, tables privacy.JobTables, opt dataset.URLOptions) ([]string, error) {
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
			return nil, fmt.Errorf("%w: catalog %s: %w", ErrInput, ref, err)
		}
	} else if err != nil {
		return nil, err
	}
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, dataset.CatalogContract, "category")
	if err != nil {
		return nil, fmt.Errorf("%w: catalog %s: %w", ErrInput, ref, err)
	}
	defer sc.Close()
	seen := map[string]bool{}
	var batch dataset.Batch
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &batch); err != nil {
			return nil, fmt.Errorf("%w: catalog %s: %w", ErrInput, ref, err)
		}
		col := batch.Column("category").Str
		for _, k := range col.Index {
			if k >= 0 && col.Dict[k] != "" {
				seen[col.Dict[k]] = true
			}
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("%w: catalog %s has no categories", ErrInput, ref)
	}
	cats := make([]string, 0, len(seen))
	for c := range seen {
		cats = append(cats, c)
	}
	slices.Sort(cats)
	return cats, nil
}

// categoryBucket is the feature column a category's events count in:
// FNV-1a of the name modulo the number of buckets.
func categoryBucket(category string, buckets int) int32 {
	h := fnv.New32a()
	h.Write([]byte(category))
	return int32(h.Sum32() % uint32(buckets))
}

// nameBucketsByCatalog describes each category feature of a DP run by the
// catalog's categories that fall in its bucket (public: the catalog and
// the hash), or by its number when no catalog is given. A bucket that no
// catalog category falls in says so.
func nameBucketsByCatalog(names []Feature, categories []string, buckets int) {
	in := make([][]string, buckets)
	for _, c := range categories {
		b := categoryBucket(c, buckets)
		in[b] = append(in[b], c)
	}
	for j, n := range names {
		num, ok := strings.CutPrefix(n.Name, "category_")
		if !ok {
			continue
		}
		b, err := strconv.Atoi(num)
		names[j].Description = "category bucket " + num
		switch {
		case err != nil || b >= buckets || categories == nil:
		case len(in[b]) == 0:
			names[j].Description += " (no catalog category)"
		default:
			names[j].Description = strings.Join(in[b], " or ")
		}
	}
}
