package dataset_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
)

// FuzzEventsParquet feeds arbitrary bytes to the events reader: it must
// return an error or rows, never panic or hang.
func FuzzEventsParquet(f *testing.F) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[dataset.Event](&buf, parquet.MaxRowsPerRowGroup(7), parquet.PageBufferSize(64))
	w.Write(testEvents(20, 3))
	w.Close()
	valid := buf.Bytes()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append([]byte("PAR1"), valid[len(valid)-64:]...))
	f.Add([]byte("PAR1PAR1"))
	var plain bytes.Buffer
	parquet.Write(&plain, []foreignEvent{{EventTime: 1, SubjectID: "a", EventType: "view", ItemID: "x"}})
	f.Add(plain.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		s := dataset.NewMemStore("fuzz")
		dataset.PutBytes(context.Background(), s, "f.parquet", data)
		pf, err := dataset.OpenParquet(context.Background(), s, "f.parquet", dataset.EventsContract)
		if err != nil {
			return
		}
		defer pf.Close()
		if pf.LargestRowGroup() > 1<<20 {
			return // a footer may claim any size; decoding it is not the point
		}
		p, err := pf.Project()
		if err != nil {
			return
		}
		// The PII guard's reader of distinct values (the dictionary alone
		// when the page headers say it holds every value) on the same bytes.
		var strs dataset.Contract
		for _, c := range dataset.EventsContract.Columns {
			if c.Kind == dataset.KindString {
				c.Nullable = true
				strs.Columns = append(strs.Columns, c)
			}
		}
		if sf, err := dataset.OpenParquet(context.Background(), s, "f.parquet", &strs); err == nil {
			if sp, err := sf.Project(); err == nil {
				var dst dataset.Distinct
				for rg := range sf.NumRowGroups() {
					if sf.ReadRowGroupDistinct(context.Background(), rg, sp, nil, &dst) != nil {
						break
					}
				}
			}
			sf.Close()
		}
		var b dataset.Batch
		for rg := range pf.NumRowGroups() {
			if err := pf.ReadRowGroup(context.Background(), rg, p, nil, &b); err != nil {
				return
			}
			for _, c := range b.Cols {
				if c.Kind == dataset.KindString {
					for i := range b.Rows {
						c.Str.At(i)
					}
				}
			}
		}
	})
}
