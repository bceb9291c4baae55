package dataset

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// ParquetFile is an open Parquet file checked against a data contract. Its
// metadata is read once; row groups are decoded on demand, each from any
// io.ReaderAt over the same bytes, so that workers read in parallel.
type ParquetFile struct {
	Name     string // location, for errors
	Contract *Contract
	obj      Object
	file     *parquet.File
}

// OpenParquet opens key in s and reads its footer. It fails with an error
// wrapping ErrNotParquet when the object is not Parquet, and with a
// *SchemaError when it lacks a required column of contract or has one of the
// wrong type.
func OpenParquet(ctx context.Context, s Store, key string, contract *Contract) (*ParquetFile, error) {
	name := s.Location() + "/" + key
	obj, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	f, err := openParquet(name, obj)
	if err != nil {
		obj.Close()
		return nil, err
	}
	pf := &ParquetFile{Name: name, Contract: contract, obj: obj, file: f}
	if _, err := contract.Check(name, f.Schema(), nil); err != nil {
		obj.Close()
		return nil, err
	}
	return pf, nil
}

func openParquet(name string, obj Object) (f *parquet.File, err error) {
	defer func() {
		// parquet-go may panic on some corrupt metadata; that is bad input,
		// not a programmer error, so it becomes an error here.
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: %w: %v", name, ErrNotParquet, r)
		}
	}()
	if obj.Size() < 12 {
		return nil, fmt.Errorf("%s: %w: %d bytes is too short", name, ErrNotParquet, obj.Size())
	}
	// parquet-go allocates the footer length the file claims before it
	// checks it against the file: a corrupt length must not make it
	// allocate gigabytes (found by fuzzing the consent reader).
	var tail [8]byte
	if _, err := obj.ReadAt(tail[:], obj.Size()-8); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("%s: %w: no PAR1 magic at the end", name, ErrNotParquet)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n == 0 || n > obj.Size()-12 {
		return nil, fmt.Errorf("%s: %w: footer of %d bytes in a file of %d", name, ErrNotParquet, n, obj.Size())
	}
	f, err = parquet.OpenFile(obj, obj.Size(),
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(256<<10),
	)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("opening %s: %w", name, err)
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrNotParquet, err)
	}
	return f, nil
}

// Close closes the underlying object.
func (f *ParquetFile) Close() error { return f.obj.Close() }

// Object returns the object the file was opened from.
func (f *ParquetFile) Object() Object { return f.obj }

// File returns the parquet-go file, for metadata.
func (f *ParquetFile) File() *parquet.File { return f.file }

// NumRows returns the number of rows in the file.
func (f *ParquetFile) NumRows() int64 { return f.file.NumRows() }

// LargestRowGroup returns the most rows any row group's metadata claims
// (the footer's file-level count may say otherwise).
func (f *ParquetFile) LargestRowGroup() int64 {
	var n int64
	for _, g := range f.file.RowGroups() {
		n = max(n, g.NumRows())
	}
	return max(n, f.file.NumRows())
}

// NumRowGroups returns the number of row groups.
func (f *ParquetFile) NumRowGroups() int { return len(f.file.RowGroups()) }

// Projection is a checked set of contract columns to decode.
type Projection struct {
	Names  []string
	kinds  []Kind
	leaves []int // -1: the file lacks this nullable column
	scales []int64
}

// Project checks that the file satisfies the contract for cols and returns
// the projection that ReadRowGroup decodes. Columns not named are never read.
func (f *ParquetFile) Project(cols ...string) (*Projection, error) {
	leaves, err := f.Contract.Check(f.Name, f.file.Schema(), cols)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		for _, c := range f.Contract.Columns {
			cols = append(cols, c.Name)
		}
	}
	p := &Projection{Names: cols, leaves: leaves}
	leafTypes := f.file.Schema().Columns()
	for i, name := range cols {
		col, _ := f.Contract.Column(name)
		if col.Kind == KindFloat32List {
			return nil, fmt.Errorf("%s: column %q: list columns are read row-wise with ReadRows", f.Name, name)
		}
		p.kinds = append(p.kinds, col.Kind)
		scale := int64(1)
		if col.Kind == KindTimestamp && leaves[i] >= 0 {
			leaf, _ := f.file.Schema().Lookup(leafTypes[leaves[i]]...)
			scale = timestampScale(leaf.Node.Type())
		}
		p.scales = append(p.scales, scale)
	}
	return p, nil
}

// Strings is a dictionary-encoded string column: row i holds
// Dict[Index[i]], or null where Index[i] < 0. A dictionary is local to one
// batch; the same string may appear under two indexes.
type Strings struct {
	Dict  []string
	Index []int32
}

// At returns row i and whether it is non-null.
func (s *Strings) At(i int) (string, bool) {
	if x := s.Index[i]; x >= 0 {
		return s.Dict[x], true
	}
	return "", false
}

// ColumnData holds one decoded column of a batch. Exactly one of Str, Int and
// Float is used, by Kind. Timestamps are microseconds since the Unix epoch.
type ColumnData struct {
	Name  string
	Kind  Kind
	Str   Strings
	Int   []int64
	Float []float64
	Valid []bool // nil when no row is null; else false marks a null
	// Distinct is true when Str.Dict holds every value that
	// ReadRowGroupDistinct reads of the column: the encoding statistics
	// do not claim that every data page is dictionary-encoded, or a data
	// page loaded the dictionary. It is false for a string column whose
	// dictionary page no data page uses, and for other kinds.
	Distinct bool
}

// Null reports whether row i is null.
func (c *ColumnData) Null(i int) bool { return c.Valid != nil && !c.Valid[i] }

// Batch is the decoded projection of one row group. A Batch is reused
// across ReadRowGroup calls: its slices are owned by the caller and
// overwritten by the next read into it.
type Batch struct {
	Rows int
	Cols []ColumnData

	intern map[string]int32
	remap  []int32
}

// Column returns the named column, or nil if it was not projected.
func (b *Batch) Column(name string) *ColumnData {
	for i := range b.Cols {
		if b.Cols[i].Name == name {
			return &b.Cols[i]
		}
	}
	return nil
}

// MaxRowGroupRows bounds the rows of one row group: decoding is row group
// at a time, so a footer that claims billions of rows would otherwise make
// the reader allocate for them before finding out that the pages do not
// hold them.
const MaxRowGroupRows = 1 << 24

// ReadRowGroup decodes row group rg of the projection into dst, reading
// pages from src (the file's own object when src is nil). A null in a
// column the contract requires is an error wrapping ErrCorrupt.
func (f *ParquetFile) ReadRowGroup(ctx context.Context, rg int, p *Projection, src io.ReaderAt, dst *Batch) error {
	return f.readRowGroup(ctx, rg, p, src, dst)
}

// Values are the distinct values of one string column of a row group,
// stored end to end: value i is Data[Offsets[i]:Offsets[i+1]]. A null is
// not a value.
type Values struct {
	Name    string
	Data    []byte
	Offsets []uint32 // one more than the values
	// Dictionary is true when the values were read from the dictionary
	// page alone, false when every row was decoded.
	Dictionary bool
}

// Len returns the number of values.
func (v *Values) Len() int { return max(0, len(v.Offsets)-1) }

// At returns value i; the bytes belong to v and are overwritten by the
// next read into it.
func (v *Values) At(i int) []byte { return v.Data[v.Offsets[i]:v.Offsets[i+1]] }

// Distinct is what ReadRowGroupDistinct reads: the rows of a row group and
// the distinct values of each projected string column. It is reused across
// reads: its buffers are the caller's and overwritten by the next read.
type Distinct struct {
	Rows int
	Cols []Values

	full Batch // columns that are decoded in full
}

// ReadRowGroupDistinct reads the distinct values of the string columns of
// p in row group rg into dst, reading pages from src (the file's own
// object when src is nil). A column whose data pages are all
// dictionary-encoded (as the column chunk's encoding statistics say) is
// read from its dictionary page alone; the others are decoded in full, as
// ReadRowGroup does, with their checks. No value becomes a Go string: it
// suits readers of many distinct values, such as the PII guard.
func (f *ParquetFile) ReadRowGroupDistinct(ctx context.Context, rg int, p *Projection, src io.ReaderAt, dst *Distinct) error {
	if src == nil {
		src = f.obj
	}
	group := f.file.RowGroups()[rg]
	if r := group.NumRows(); r < 0 || r > MaxRowGroupRows {
		return fmt.Errorf("%s: %w: row group %d claims %d rows; veil reads at most %d per row group (rewrite the file with smaller row groups)", f.Name, ErrCorrupt, rg, r, MaxRowGroupRows)
	}
	dst.Rows = int(group.NumRows())
	if cap(dst.Cols) < len(p.Names) {
		dst.Cols = make([]Values, len(p.Names))
	}
	dst.Cols = dst.Cols[:len(p.Names)]
	chunks := group.ColumnChunks()
	for i, name := range p.Names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.kinds[i] != KindString {
			return fmt.Errorf("%s: column %q: distinct values are read of string columns only", f.Name, name)
		}
		v := &dst.Cols[i]
		v.Name, v.Data, v.Offsets, v.Dictionary = name, v.Data[:0], append(v.Offsets[:0], 0), false
		if p.leaves[i] < 0 { // nullable column missing from the file: no values
			continue
		}
		chunk, meta, err := f.columnChunk(chunks, rg, p.leaves[i], name, src)
		if err != nil {
			return err
		}
		if dictionaryOnly(meta) {
			// The footer's statistics are the writer's word: the page
			// headers themselves decide whether the dictionary holds
			// every value (TestScanPIIDistrustsEncodingStats).
			ok, err := dictionaryPages(src, meta)
			if err == nil && ok {
				err = readDictionary(chunk, src, v)
				v.Dictionary = err == nil
			}
			if err != nil {
				return fmt.Errorf("%s: row group %d: column %q: %w", f.Name, rg, name, err)
			}
			if v.Dictionary {
				continue
			}
		}
		// Plain pages hold every row's value: decode them all, as
		// ReadRowGroup does, and keep the distinct ones.
		one := &Projection{Names: p.Names[i : i+1], kinds: p.kinds[i : i+1], leaves: p.leaves[i : i+1], scales: p.scales[i : i+1]}
		if err := f.readRowGroup(ctx, rg, one, src, &dst.full); err != nil {
			return err
		}
		for _, s := range dst.full.Cols[0].Str.Dict {
			v.Data = append(v.Data, s...)
			v.Offsets = append(v.Offsets, uint32(len(v.Data)))
		}
	}
	return nil
}

func (f *ParquetFile) readRowGroup(ctx context.Context, rg int, p *Projection, src io.ReaderAt, dst *Batch) error {
	if src == nil {
		src = f.obj
	}
	group := f.file.RowGroups()[rg]
	if r := group.NumRows(); r < 0 || r > MaxRowGroupRows {
		return fmt.Errorf("%s: %w: row group %d claims %d rows; veil reads at most %d per row group (rewrite the file with smaller row groups)", f.Name, ErrCorrupt, rg, r, MaxRowGroupRows)
	}
	n := int(group.NumRows())
	dst.Rows = n
	if cap(dst.Cols) < len(p.Names) {
		dst.Cols = make([]ColumnData, len(p.Names))
	}
	dst.Cols = dst.Cols[:len(p.Names)]
	chunks := group.ColumnChunks()
	for i, name := range p.Names {
		if err := ctx.Err(); err != nil {
			return err
		}
		col := &dst.Cols[i]
		col.Name, col.Kind = name, p.kinds[i]
		col.Str.Dict, col.Str.Index = col.Str.Dict[:0], col.Str.Index[:0]
		col.Int, col.Float, col.Valid = col.Int[:0], col.Float[:0], col.Valid[:0]
		col.Distinct = false
		if p.leaves[i] < 0 { // nullable column missing from the file
			fillNull(col, n)
			col.Distinct = col.Kind == KindString
			continue
		}
		chunk, meta, err := f.columnChunk(chunks, rg, p.leaves[i], name, src)
		if err != nil {
			return err
		}
		dict, err := dst.decodeChunk(chunk, src, col, p.scales[i])
		if err != nil {
			return fmt.Errorf("%s: row group %d: column %q: %w", f.Name, rg, name, err)
		}
		col.Distinct = col.Kind == KindString && (dict || !dictionaryOnly(meta))
		if got := col.len(); got != n {
			return fmt.Errorf("%s: row group %d: column %q: %w: %d values for %d rows", f.Name, rg, name, ErrCorrupt, got, n)
		}
		if col.Valid != nil {
			if c, _ := f.Contract.Column(name); !c.Nullable {
				return fmt.Errorf("%s: row group %d: column %q: %w: null in a required column", f.Name, rg, name, ErrCorrupt)
			}
		}
	}
	return nil
}

func (c *ColumnData) len() int {
	switch c.Kind {
	case KindString:
		return len(c.Str.Index)
	case KindDouble:
		return len(c.Float)
	}
	return len(c.Int)
}

func fillNull(col *ColumnData, n int) {
	col.Valid = grow(col.Valid, n)
	clear(col.Valid)
	switch col.Kind {
	case KindString:
		col.Str.Index = grow(col.Str.Index, n)
		for j := range col.Str.Index {
			col.Str.Index[j] = -1
		}
	case KindDouble:
		col.Float = grow(col.Float, n)
		clear(col.Float)
	default:
		col.Int = grow(col.Int, n)
		clear(col.Int)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// decodeChunk decodes a column chunk into col and reports whether a data
// page loaded a dictionary.
func (b *Batch) decodeChunk(chunk *parquet.FileColumnChunk, src io.ReaderAt, col *ColumnData, scale int64) (dict bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	pages := chunk.PagesFrom(src)
	defer pages.Close()
	var lastDict parquet.Dictionary
	clear(b.intern)
	for {
		page, err := pages.ReadPage()
		if err == io.EOF {
			return lastDict != nil, nil
		}
		if err != nil {
			return false, err
		}
		if d := page.Dictionary(); d != nil && d != lastDict && col.Kind == KindString {
			lastDict = d
			b.loadDict(d, col)
		}
		b.decodePage(page, col, scale)
		parquet.Release(page)
	}
}

// columnChunk returns the chunk of row group rg's leaf column and its
// metadata, its byte range checked against the file (checkChunk).
func (f *ParquetFile) columnChunk(chunks []parquet.ColumnChunk, rg, leaf int, name string, src io.ReaderAt) (*parquet.FileColumnChunk, *format.ColumnMetaData, error) {
	chunk, ok := chunks[leaf].(*parquet.FileColumnChunk)
	if !ok {
		return nil, nil, fmt.Errorf("%s: row group %d: column %q: unexpected chunk type %T", f.Name, rg, name, chunks[leaf])
	}
	meta := &f.file.Metadata().RowGroups[rg].Columns[leaf].MetaData
	if err := checkChunk(src, f.obj.Size(), meta); err != nil {
		return nil, nil, fmt.Errorf("%s: row group %d: column %q: %w", f.Name, rg, name, err)
	}
	return chunk, meta, nil
}

// dictionaryOnly reports whether a column chunk's encoding statistics say
// that every data page of it is dictionary-encoded.
func dictionaryOnly(meta *format.ColumnMetaData) bool {
	data := 0
	for _, st := range meta.EncodingStats {
		switch st.PageType {
		case format.DataPage, format.DataPageV2:
			if st.Encoding != format.RLEDictionary && st.Encoding != format.PlainDictionary {
				return false
			}
			data++
		}
	}
	return data > 0
}

// dictionaryPages reports whether a column chunk is a dictionary page and
// data pages that are all dictionary-encoded, from the page headers
// themselves: it reads each header and skips the page's bytes, decoding
// none.
func dictionaryPages(src io.ReaderAt, meta *format.ColumnMetaData) (bool, error) {
	start := meta.DataPageOffset
	if o := meta.DictionaryPageOffset; o > 0 && o < start {
		start = o
	}
	end := start + meta.TotalCompressedSize
	dict, data := false, 0
	for off := start; off < end; {
		r := &countingReader{r: io.NewSectionReader(src, off, end-off)}
		buf := bufio.NewReaderSize(r, 256)
		var h format.PageHeader
		if err := thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(buf)).Decode(&h); err != nil {
			return false, fmt.Errorf("%w: page header at byte %d: %v", ErrCorrupt, off, err)
		}
		if h.CompressedPageSize < 0 {
			return false, fmt.Errorf("%w: page at byte %d claims %d bytes", ErrCorrupt, off, h.CompressedPageSize)
		}
		switch h.Type {
		case format.DictionaryPage:
			dict = true
		case format.DataPage, format.DataPageV2:
			enc := h.DataPageHeader.V.Encoding
			if h.Type == format.DataPageV2 {
				enc = h.DataPageHeaderV2.V.Encoding
			}
			if enc != format.RLEDictionary && enc != format.PlainDictionary {
				return false, nil
			}
			data++
		}
		off += r.n - int64(buf.Buffered()) + int64(h.CompressedPageSize)
	}
	return dict && data > 0, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readDictionary reads only the dictionary page of a column chunk into v.
func readDictionary(chunk *parquet.FileColumnChunk, src io.ReaderAt, v *Values) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	pages := chunk.PagesFrom(src)
	defer pages.Close()
	d, err := pages.ReadDictionary()
	if err != nil || d == nil {
		return err
	}
	values := d.Page().Data()
	data, offsets := values.ByteArray()
	if len(offsets) == 0 {
		return nil
	}
	// The dictionary's buffers are parquet-go's: copy them into v's, as
	// offsets from 0, checked so that v.At cannot fail.
	base, last := offsets[0], offsets[len(offsets)-1]
	if base > last || int64(last) > int64(len(data)) {
		return fmt.Errorf("%w: dictionary offsets [%d, %d] out of %d bytes", ErrCorrupt, base, last, len(data))
	}
	v.Data = append(v.Data, data[base:last]...)
	prev := base
	for _, o := range offsets[1:] {
		if o < prev {
			return fmt.Errorf("%w: dictionary offsets decrease", ErrCorrupt)
		}
		v.Offsets = append(v.Offsets, o-base)
		prev = o
	}
	return nil
}

// loadDict appends the strings of d to the batch dictionary and records the
// index remapping for its pages.
func (b *Batch) loadDict(d parquet.Dictionary, col *ColumnData) {
	values := d.Page().Data()
	data, offsets := values.ByteArray()
	base := int32(len(col.Str.Dict))
	b.remap = b.remap[:0]
	for j := 0; j+1 < len(offsets); j++ {
		col.Str.Dict = append(col.Str.Dict, string(data[offsets[j]:offsets[j+1]]))
		b.remap = append(b.remap, base+int32(j))
	}
}

func (b *Batch) decodePage(page parquet.Page, col *ColumnData, scale int64) {
	nrows := int(page.NumValues())
	defs := page.DefinitionLevels()
	start := col.len()
	hasNulls := page.NumNulls() > 0
	if hasNulls && col.Valid == nil {
		col.Valid = make([]bool, start, max(start+nrows, 1024))
		for j := range col.Valid {
			col.Valid[j] = true
		}
	}
	values := page.Data()
	// Contract columns are top-level leaves, so a non-null value of an
	// optional column has definition level 1.
	valid := func(j int) bool { return !hasNulls || defs[j] == 1 }
	if col.Valid != nil {
		for j := range nrows {
			col.Valid = append(col.Valid, valid(j))
		}
	}
	v := 0 // index into the non-null values
	switch col.Kind {
	case KindString:
		if page.Dictionary() != nil {
			idx := values.Int32()
			for j := range nrows {
				if valid(j) {
					col.Str.Index = append(col.Str.Index, b.remap[idx[v]])
					v++
				} else {
					col.Str.Index = append(col.Str.Index, -1)
				}
			}
			return
		}
		data, offsets := values.ByteArray()
		if b.intern == nil {
			b.intern = make(map[string]int32)
		}
		for j := range nrows {
			if !valid(j) {
				col.Str.Index = append(col.Str.Index, -1)
				continue
			}
			s := data[offsets[v]:offsets[v+1]]
			v++
			x, ok := b.intern[string(s)]
			if !ok {
				x = int32(len(col.Str.Dict))
				str := string(s)
				col.Str.Dict = append(col.Str.Dict, str)
				b.intern[str] = x
			}
			col.Str.Index = append(col.Str.Index, x)
		}
	case KindDouble:
		var get func(int) float64
		if page.Type().Kind() == parquet.Float {
			fs := values.Float()
			get = func(i int) float64 { return float64(fs[i]) }
		} else {
			ds := values.Double()
			if !hasNulls {
				col.Float = append(col.Float, ds[:nrows]...)
				return
			}
			get = func(i int) float64 { return ds[i] }
		}
		for j := range nrows {
			if valid(j) {
				col.Float = append(col.Float, get(v))
				v++
			} else {
				col.Float = append(col.Float, 0)
			}
		}
	default: // KindInt64, KindTimestamp
		var get func(int) int64
		if page.Type().Kind() == parquet.Int32 {
			is := values.Int32()
			get = func(i int) int64 { return int64(is[i]) }
		} else {
			is := values.Int64()
			if !hasNulls && scale == 1 {
				col.Int = append(col.Int, is[:nrows]...)
				return
			}
			get = func(i int) int64 { return is[i] }
		}
		for j := range nrows {
			var x int64
			if valid(j) {
				x = get(v)
				v++
				if scale > 1 {
					x *= scale
				} else if scale < 0 {
					x /= -scale
				}
			}
			col.Int = append(col.Int, x)
		}
	}
}
