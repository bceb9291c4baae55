package segment

import (
	"context"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// ParquetMatrix is a kmeans.Source over a Parquet file with one FLOAT or DOUBLE
// column per dimension, one row group per piece.
type ParquetMatrix struct {
	f *dataset.ParquetFile
	p *dataset.Projection
	b dataset.Batch
}

// OpenParquetMatrix opens a Parquet matrix for streaming.
func OpenParquetMatrix(ctx context.Context, ref dataset.Ref) (*ParquetMatrix, error) {
	probe, err := dataset.OpenParquet(ctx, ref.Store, ref.Key, &dataset.Contract{Name: "matrix"})
	if err != nil {
		return nil, err
	}
	c := &dataset.Contract{Name: "matrix"}
	for _, path := range probe.File().Schema().Columns() {
		leaf, _ := probe.File().Schema().Lookup(path...)
		k := leaf.Node.Type().Kind()
		if len(path) == 1 && (k == parquet.Float || k == parquet.Double) && leaf.Node.Type().LogicalType() == nil {
			c.Columns = append(c.Columns, dataset.Column{Name: path[0], Kind: dataset.KindDouble})
		}
	}
	probe.Close()
	if len(c.Columns) == 0 {
		return nil, fmt.Errorf("%s: %w: no FLOAT or DOUBLE columns", ref, ErrInput)
	}
	f, err := dataset.OpenParquet(ctx, ref.Store, ref.Key, c)
	if err != nil {
		return nil, err
	}
	p, err := f.Project()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &ParquetMatrix{f: f, p: p}, nil
}

// Close closes the file.
func (m *ParquetMatrix) Close() error { return m.f.Close() }

// Pieces returns the number of row groups.
func (m *ParquetMatrix) Pieces() int { return m.f.NumRowGroups() }

// Dims returns the number of columns.
func (m *ParquetMatrix) Dims() int { return len(m.p.Names) }

// Read decodes row group g into dst (reused when large enough).
func (m *ParquetMatrix) Read(ctx context.Context, g int, dst *kmeans.Matrix) (*kmeans.Matrix, error) {
	if err := m.f.ReadRowGroup(ctx, g, m.p, nil, &m.b); err != nil {
		return nil, err
	}
	d := len(m.p.Names)
	if dst == nil || cap(dst.Data) < m.b.Rows*d {
		dst = &kmeans.Matrix{Data: make([]float32, m.b.Rows*d)}
	}
	dst.N, dst.D, dst.Data = m.b.Rows, d, dst.Data[:m.b.Rows*d]
	for j, col := range m.b.Cols {
		for i, v := range col.Float {
			dst.Data[i*d+j] = float32(v)
		}
	}
	if err := dst.Check(); err != nil {
		return nil, fmt.Errorf("%s: row group %d: %w", m.f.Name, g, err)
	}
	return dst, nil
}

// MatrixWriter writes a Parquet matrix, one FLOAT column per dimension
// (x0, x1, ...), piece by piece, for tools and tests that write more rows
// than they hold.
type MatrixWriter struct {
	pw   *parquet.Writer
	leaf []int // column index of each dimension
}

// NewMatrixWriter starts a Parquet matrix of d columns, rowGroup rows per
// row group.
func NewMatrixWriter(w io.Writer, d, rowGroup int) *MatrixWriter {
	group := parquet.Group{}
	for j := range d {
		group[fmt.Sprintf("x%d", j)] = parquet.Leaf(parquet.FloatType)
	}
	schema := parquet.NewSchema("matrix", group)
	// A group orders its columns by name; map dimension j to its leaf.
	leaf := make([]int, d)
	for j := range d {
		col, _ := schema.Lookup(fmt.Sprintf("x%d", j))
		leaf[j] = col.ColumnIndex
	}
	return &MatrixWriter{pw: parquet.NewWriter(w, schema, parquet.MaxRowsPerRowGroup(int64(rowGroup))), leaf: leaf}
}

// Write appends the rows of m.
func (w *MatrixWriter) Write(m *kmeans.Matrix) error {
	rows := make([]parquet.Row, 0, 1024)
	for i := range m.N {
		row := make(parquet.Row, m.D)
		for j, v := range m.Row(i) {
			row[w.leaf[j]] = parquet.ValueOf(v).Level(0, 0, w.leaf[j])
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) || i == m.N-1 {
			if _, err := w.pw.WriteRows(rows); err != nil {
				return err
			}
			rows = rows[:0]
		}
	}
	return nil
}

// Close finishes the file.
func (w *MatrixWriter) Close() error { return w.pw.Close() }

// WriteParquetMatrix writes m as a Parquet matrix.
func WriteParquetMatrix(w io.Writer, m *kmeans.Matrix, rowGroup int) error {
	mw := NewMatrixWriter(w, m.D, rowGroup)
	if err := mw.Write(m); err != nil {
		return err
	}
	return mw.Close()
}
