package segment

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
)

// LoadMatrix reads a matrix from a .npy file, or from a Parquet file with
// one FLOAT or DOUBLE column per dimension (other columns are ignored),
// columns in schema order.
func LoadMatrix(ctx context.Context, ref dataset.Ref) (*Matrix, error) {
	obj, err := ref.Store.Open(ctx, ref.Key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if strings.HasSuffix(ref.Key, ".npy") {
		x, err := ReadNpy(io.NewSectionReader(obj, 0, obj.Size()), obj.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return x, nil
	}
	probe, err := dataset.OpenParquet(ctx, ref.Store, ref.Key, &dataset.Contract{Name: "matrix"})
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	c := &dataset.Contract{Name: "matrix"}
	for _, path := range probe.File().Schema().Columns() {
		leaf, _ := probe.File().Schema().Lookup(path...)
		k := leaf.Node.Type().Kind()
		if len(path) == 1 && (k == parquet.Float || k == parquet.Double) && leaf.Node.Type().LogicalType() == nil {
			c.Columns = append(c.Columns, dataset.Column{Name: path[0], Kind: dataset.KindDouble})
		}
	}
	if len(c.Columns) == 0 {
		return nil, fmt.Errorf("%s: %w: no FLOAT or DOUBLE columns", ref, ErrInput)
	}
	f, err := dataset.OpenParquet(ctx, ref.Store, ref.Key, c)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := f.Project()
	if err != nil {
		return nil, err
	}
	x := NewMatrix(int(f.NumRows()), len(c.Columns))
	var b dataset.Batch
	row := 0
	for g := range f.NumRowGroups() {
		if err := f.ReadRowGroup(ctx, g, p, nil, &b); err != nil {
			return nil, err
		}
		for j, col := range b.Cols {
			for i, v := range col.Float {
				x.Data[(row+i)*x.D+j] = float32(v)
			}
		}
		row += b.Rows
	}
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return x, nil
}
