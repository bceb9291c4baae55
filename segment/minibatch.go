package segment

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
)

// Source yields a matrix one piece at a time, so that mini-batch k-means
// never holds all of it: a Parquet file row group by row group.
type Source interface {
	Pieces() int
	Dims() int
	Read(ctx context.Context, piece int, dst *Matrix) (*Matrix, error)
}

// MiniBatch configures mini-batch k-means (Sculley 2010).
type MiniBatch struct {
	K         int
	BatchSize int // points per update (default 1024)
	Epochs    int // passes over the data (default 2)
	Seed      uint64
}

// FitStream runs mini-batch k-means over a source: centres seeded by
// k-means++ on the first piece, then every piece, in a random order per
// epoch, is cut into shuffled batches; each point moves its nearest centre
// towards it with a per-centre learning rate of 1/count. A last pass
// computes the inertia. Memory is one piece and the centres.
func (m *MiniBatch) FitStream(ctx context.Context, src Source) (*Result, error) {
	if m.BatchSize == 0 {
		m.BatchSize = 1024
	}
	if m.Epochs == 0 {
		m.Epochs = 2
	}
	if m.K < 1 || m.BatchSize < 1 || m.Epochs < 1 || src.Pieces() < 1 {
		return nil, fmt.Errorf("%w: mini-batch k-means needs k, batch size and epochs of at least 1 and some data", ErrConfig)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(m.Seed, 0x3b))
	var piece *Matrix
	var err error
	if piece, err = src.Read(ctx, 0, piece); err != nil {
		return nil, err
	}
	if piece.N < m.K {
		return nil, fmt.Errorf("%w: the first piece has %d points, fewer than k = %d", ErrConfig, piece.N, m.K)
	}
	centres, err := kmeansPlusPlus(ctx, piece, m.K, rng, 1)
	if err != nil {
		return nil, err
	}
	counts := make([]float64, m.K)
	blk := newCentreBlock(m.K, src.Dims())
	scratch := make([]float32, blk.kp)
	batches := 0
	for range m.Epochs {
		for _, p := range rng.Perm(src.Pieces()) {
			if piece, err = src.Read(ctx, p, piece); err != nil {
				return nil, err
			}
			order := rng.Perm(piece.N)
			for lo := 0; lo < len(order); lo += m.BatchSize {
				batch := order[lo:min(lo+m.BatchSize, len(order))]
				blk.load(centres)
				labels := make([]int32, len(batch))
				for b, i := range batch {
					row := piece.Row(i)
					var xx float32
					for _, v := range row {
						xx += v * v
					}
					labels[b], _, _ = blk.nearest2(row, xx, scratch)
				}
				for b, i := range batch {
					c := labels[b]
					counts[c]++
					lr := float32(1 / counts[c])
					crow := centres.Row(int(c))
					for t, v := range piece.Row(i) {
						crow[t] += lr * (v - crow[t])
					}
				}
				batches++
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	r := &Result{Centroids: centres, Sizes: make([]int, m.K), Iterations: batches}
	blk.load(centres)
	for p := range src.Pieces() {
		if piece, err = src.Read(ctx, p, piece); err != nil {
			return nil, err
		}
		for i := range piece.N {
			row := piece.Row(i)
			a, _, _ := blk.nearest2(row, 0, scratch)
			r.Sizes[a]++
			r.Inertia += sqDist64(row, centres.Row(int(a)))
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}

// ParquetMatrix is a Source over a Parquet file with one FLOAT or DOUBLE
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
func (m *ParquetMatrix) Read(ctx context.Context, g int, dst *Matrix) (*Matrix, error) {
	if err := m.f.ReadRowGroup(ctx, g, m.p, nil, &m.b); err != nil {
		return nil, err
	}
	d := len(m.p.Names)
	if dst == nil || cap(dst.Data) < m.b.Rows*d {
		dst = &Matrix{Data: make([]float32, m.b.Rows*d)}
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
func (w *MatrixWriter) Write(m *Matrix) error {
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
func WriteParquetMatrix(w io.Writer, m *Matrix, rowGroup int) error {
	mw := NewMatrixWriter(w, m.D, rowGroup)
	if err := mw.Write(m); err != nil {
		return err
	}
	return mw.Close()
}
