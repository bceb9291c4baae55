package dataset

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Unit is the unit of work of a scan: one row group of one file. The same
// unit runs on one machine or inside a distributed engine.
type Unit struct {
	File     int // index into Scan.Files
	RowGroup int
	Rows     int64
}

// Scan reads a projection of many Parquet files of one contract, row group by
// row group, on several workers.
type Scan struct {
	Store Store
	Keys  []string
	Files []*ParquetFile
	proj  []*Projection
	units []Unit
}

// OpenScan opens the footers of keys in s and checks each against contract
// for cols. On error every file opened so far is closed.
func OpenScan(ctx context.Context, s Store, keys []string, contract *Contract, cols ...string) (*Scan, error) {
	sc := &Scan{Store: s, Keys: keys}
	for i, k := range keys {
		f, err := OpenParquet(ctx, s, k, contract)
		if err != nil {
			sc.Close()
			return nil, err
		}
		p, err := f.Project(cols...)
		if err != nil {
			f.Close()
			sc.Close()
			return nil, err
		}
		sc.Files = append(sc.Files, f)
		sc.proj = append(sc.proj, p)
		for rg, g := range f.File().RowGroups() {
			sc.units = append(sc.units, Unit{File: i, RowGroup: rg, Rows: g.NumRows()})
		}
	}
	return sc, nil
}

// Units returns the row groups of the scan in file and row-group order.
func (sc *Scan) Units() []Unit { return sc.units }

// Rows returns the number of rows of all files.
func (sc *Scan) Rows() int64 {
	var n int64
	for _, u := range sc.units {
		n += u.Rows
	}
	return n
}

// Close closes every file.
func (sc *Scan) Close() error {
	var errs []error
	for _, f := range sc.Files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Read decodes one unit into dst, reading from the file's own object.
func (sc *Scan) Read(ctx context.Context, u Unit, dst *Batch) error {
	return sc.Files[u.File].ReadRowGroup(ctx, u.RowGroup, sc.proj[u.File], nil, dst)
}

// Run decodes every unit on workers goroutines (at least 1) and calls fn
// with each decoded batch. fn is called concurrently from different workers,
// each with its own batch, which is reused once fn returns; worker is the
// caller's index in [0, workers). The first error stops the scan.
func (sc *Scan) Run(ctx context.Context, workers int, fn func(worker int, u Unit, b *Batch) error) error {
	workers = max(1, min(workers, len(sc.units)))
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for w := range workers {
		g.Go(func() error {
			// Each worker reads through objects of its own, so that the
			// block caches of remote objects are not shared across workers.
			objs := make(map[int]Object)
			defer func() {
				for _, o := range objs {
					o.Close()
				}
			}()
			var b Batch
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sc.units) {
					return nil
				}
				u := sc.units[i]
				obj, ok := objs[u.File]
				if !ok {
					var err error
					if obj, err = sc.Store.Open(ctx, sc.Keys[u.File]); err != nil {
						return err
					}
					if obj.Size() != sc.Files[u.File].Object().Size() {
						obj.Close()
						return fmt.Errorf("%s: %w: changed size while being read", sc.Files[u.File].Name, ErrCorrupt)
					}
					objs[u.File] = obj
				}
				if err := sc.Files[u.File].ReadRowGroup(ctx, u.RowGroup, sc.proj[u.File], obj, &b); err != nil {
					return err
				}
				if err := fn(w, u, &b); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}
