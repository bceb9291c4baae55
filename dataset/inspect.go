package dataset

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Inspection describes a dataset: its files, schema, size and time range.
type Inspection struct {
	URL       string          `json:"url"`
	Committed *time.Time      `json:"committed_at,omitempty"` // manifest time, for veil outputs
	Contract  string          `json:"contract,omitempty"`     // the first v1 contract all files satisfy
	Rows      int64           `json:"rows"`
	Bytes     int64           `json:"bytes"`
	RowGroups int             `json:"row_groups"`
	Files     []InspectedFile `json:"files"`
	Schema    []SchemaColumn  `json:"schema"`
	TimeRange *TimeRange      `json:"time_range,omitempty"`
}

// InspectedFile is one file of an Inspection.
type InspectedFile struct {
	Key       string `json:"key"`
	Rows      int64  `json:"rows"`
	Bytes     int64  `json:"bytes"`
	RowGroups int    `json:"row_groups"`
}

// SchemaColumn is one leaf column of a schema.
type SchemaColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// TimeRange is the span of a timestamp column, from row-group statistics.
type TimeRange struct {
	Column string    `json:"column"`
	Min    time.Time `json:"min"`
	Max    time.Time `json:"max"`
}

// Inspect reads the footers of the Parquet files that ref names (see Inputs)
// and summarizes them. It reads no data pages.
func Inspect(ctx context.Context, ref Ref) (*Inspection, error) {
	keys, err := Inputs(ctx, ref, Window{})
	if err != nil {
		return nil, err
	}
	in := &Inspection{URL: ref.String()}
	if m, err := ReadManifest(ctx, ref.Store, ref.Key); err == nil {
		t := m.CreatedAt
		in.Committed = &t
	}
	candidates := []*Contract{EventsContract, ConsentContract, ErasureContract, CatalogContract, CohortAssignmentsContract, ItemFactorsContract, RecommendationsContract}
	for i, key := range keys {
		name := ref.Store.Location() + "/" + key
		obj, err := ref.Store.Open(ctx, key)
		if err != nil {
			return nil, err
		}
		f, err := openParquet(name, obj)
		if err != nil {
			obj.Close()
			return nil, err
		}
		schema := f.Schema()
		if i == 0 {
			in.Schema = schemaColumns(schema)
		}
		// Keep the contracts every file satisfies.
		kept := candidates[:0]
		for _, c := range candidates {
			if _, err := c.Check(name, schema, nil); err == nil {
				kept = append(kept, c)
			}
		}
		candidates = kept
		in.Files = append(in.Files, InspectedFile{Key: key, Rows: f.NumRows(), Bytes: obj.Size(), RowGroups: len(f.RowGroups())})
		in.Rows += f.NumRows()
		in.Bytes += obj.Size()
		in.RowGroups += len(f.RowGroups())
		in.TimeRange = mergeTimeRange(in.TimeRange, fileTimeRange(f))
		obj.Close()
	}
	if len(candidates) > 0 {
		in.Contract = fmt.Sprintf("%s v%d", candidates[0].Name, candidates[0].Version)
	}
	return in, nil
}

func schemaColumns(s *parquet.Schema) []SchemaColumn {
	var cols []SchemaColumn
	for _, path := range s.Columns() {
		leaf, _ := s.Lookup(path...)
		cols = append(cols, SchemaColumn{
			Name:     strings.Join(path, "."),
			Type:     leaf.Node.Type().String(),
			Nullable: leaf.MaxDefinitionLevel > 0,
		})
	}
	return cols
}

// fileTimeRange returns the range of the first timestamp column of f.
func fileTimeRange(f *parquet.File) *TimeRange {
	for i, path := range f.Schema().Columns() {
		leaf, _ := f.Schema().Lookup(path...)
		t := leaf.Node.Type()
		lt := t.LogicalType()
		if lt == nil || t.Kind() != parquet.Int64 {
			continue
		}
		if _, ok := lt.Value.(*format.TimestampType); !ok {
			continue
		}
		scale := timestampScale(t)
		var tr *TimeRange
		for _, g := range f.RowGroups() {
			chunk, ok := g.ColumnChunks()[i].(*parquet.FileColumnChunk)
			if !ok {
				return nil
			}
			lo, hi, ok := chunk.Bounds()
			if !ok {
				return nil // no statistics: unknown
			}
			r := &TimeRange{Column: strings.Join(path, "."), Min: micros(lo.Int64(), scale), Max: micros(hi.Int64(), scale)}
			tr = mergeTimeRange(tr, r)
		}
		return tr
	}
	return nil
}

func micros(v, scale int64) time.Time {
	if scale > 0 {
		v *= scale
	} else {
		v /= -scale
	}
	return time.UnixMicro(v).UTC()
}

func mergeTimeRange(a, b *TimeRange) *TimeRange {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := *a
	if b.Min.Before(out.Min) {
		out.Min = b.Min
	}
	if b.Max.After(out.Max) {
		out.Max = b.Max
	}
	return &out
}
