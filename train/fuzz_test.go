package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/train/mf"
)

// FuzzReadCSV feeds arbitrary text to the interactions CSV reader: an
// error wrapping ErrInput or data, never a panic; every weight it accepts
// is positive and finite.
func FuzzReadCSV(f *testing.F) {
	f.Add("subject_id,item_id,event_time,weight\ns1,i1,2026-11-01T10:00:00Z,2\ns2,i1,2026-11-02,1\n", "")
	f.Add("subject_id,item_id,event_type\ns1,i1,purchase\ns1,i2,view\n", "purchase")
	f.Add("subject_id,item_id\n\"s1,i1\n", "")
	f.Add("item_id,subject_id,weight\ni,s,NaN\n", "")
	f.Fuzz(func(t *testing.T, in, types string) {
		var ts []string
		if types != "" {
			ts = strings.Split(types, ",")
		}
		d, err := mf.ReadCSV(strings.NewReader(in), "in.csv", ts)
		if err != nil {
			if !errors.Is(err, mf.ErrInput) {
				t.Fatalf("error %v does not wrap ErrInput", err)
			}
			return
		}
		checkData(t, d)
	})
}

type interactionRow struct {
	SubjectID string    `parquet:"subject_id"`
	ItemID    string    `parquet:"item_id"`
	EventTime time.Time `parquet:"event_time,timestamp(microsecond)"`
	Weight    float64   `parquet:"weight"`
	EventType string    `parquet:"event_type"`
}

// FuzzReadParquet feeds arbitrary bytes to the interactions Parquet reader.
func FuzzReadParquet(f *testing.F) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[interactionRow](&buf, parquet.MaxRowsPerRowGroup(3))
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w.Write([]interactionRow{{"s1", "i1", t0, 1, "view"}, {"s1", "i2", t0.Add(time.Hour), 2, "purchase"}, {"s2", "i1", t0, 0.5, "view"}, {"s3", "i3", t0, 1, "view"}})
	w.Close()
	valid := buf.Bytes()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		s := dataset.NewMemStore("fuzz")
		dataset.PutBytes(context.Background(), s, "f.parquet", data)
		ref := dataset.Ref{Store: s, Key: "f.parquet"}
		if pf, err := dataset.OpenParquet(context.Background(), s, "f.parquet", InteractionsContract); err == nil {
			n := pf.LargestRowGroup()
			pf.Close()
			if n > 1<<16 {
				return // a footer may claim any size; decoding it is not the point
			}
		}
		d, err := readParquet(context.Background(), ref, []string{"f.parquet"}, nil)
		if err != nil {
			return
		}
		checkData(t, d)
	})
}

func checkData(t *testing.T, d *mf.Data) {
	t.Helper()
	if len(d.Subjects) == 0 || len(d.Rows) != len(d.Subjects) {
		t.Fatalf("data with %d subjects, %d row lists", len(d.Subjects), len(d.Rows))
	}
	for _, rows := range d.Rows {
		for _, x := range rows {
			if int(x.Item) >= len(d.Items) || x.Item < 0 || !(x.Weight > 0) || math.IsInf(float64(x.Weight), 0) {
				t.Fatalf("interaction %+v out of range (%d items)", x, len(d.Items))
			}
		}
	}
}
