package dataset_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
)

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

// testEvents makes n events with nulls sprinkled in the nullable columns.
func testEvents(n int, seed uint64) []dataset.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([]dataset.Event, n)
	for i := range out {
		e := dataset.Event{
			SubjectID: fmt.Sprintf("tok_t_%d", r.IntN(n/3+1)),
			EventTime: base.Add(time.Duration(r.Int64N(int64(24*time.Hour))) / time.Microsecond * time.Microsecond),
			EventType: []string{"view", "add_to_cart", "purchase"}[r.IntN(3)],
			ItemID:    fmt.Sprintf("I%d", r.IntN(50)),
		}
		if r.IntN(4) > 0 {
			e.Category = ptr([]string{"home/decor", "toys/games"}[r.IntN(2)])
		}
		if r.IntN(3) > 0 {
			e.Quantity = ptr(int64(r.IntN(5) - 1))
			e.Value = ptr(float64(r.IntN(10000)) / 100)
		}
		if r.IntN(5) > 0 {
			e.Region = ptr("DE")
		}
		out[i] = e
	}
	return out
}

// writeEvents writes events into a committed output under prefix, split
// into files of at most perFile rows.
func writeEvents(t *testing.T, s dataset.Store, prefix string, events []dataset.Event, perFile int, opts ...parquet.WriterOption) *dataset.Manifest {
	t.Helper()
	out, err := dataset.NewOutput(ctx, s, prefix, dataset.EventsContract, "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(events); i += perFile {
		w, err := dataset.CreateParquet[dataset.Event](ctx, out, fmt.Sprintf("part-%05d.parquet", i/perFile), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(events[i:min(i+perFile, len(events))]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := out.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scanAll reads every row of the events under ref back into Event values.
func scanAll(t *testing.T, ref dataset.Ref, cols ...string) []dataset.Event {
	t.Helper()
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := dataset.OpenScan(ctx, ref.Store, keys, dataset.EventsContract, cols...)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	var out []dataset.Event
	var b dataset.Batch
	for _, u := range sc.Units() {
		if err := sc.Read(ctx, u, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, batchEvents(&b)...)
	}
	return out
}

func batchEvents(b *dataset.Batch) []dataset.Event {
	out := make([]dataset.Event, b.Rows)
	str := func(name string, i int) (string, bool) {
		if c := b.Column(name); c != nil {
			return c.Str.At(i)
		}
		return "", false
	}
	for i := range out {
		e := &out[i]
		e.SubjectID, _ = str("subject_id", i)
		e.EventType, _ = str("event_type", i)
		e.ItemID, _ = str("item_id", i)
		if c := b.Column("event_time"); c != nil {
			e.EventTime = time.UnixMicro(c.Int[i]).UTC()
		}
		if v, ok := str("category", i); ok {
			e.Category = ptr(v)
		}
		if v, ok := str("region", i); ok {
			e.Region = ptr(v)
		}
		if c := b.Column("quantity"); c != nil && !c.Null(i) {
			e.Quantity = ptr(c.Int[i])
		}
		if c := b.Column("value"); c != nil && !c.Null(i) {
			e.Value = ptr(c.Float[i])
		}
	}
	return out
}

func eventString(e dataset.Event) string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	q, v := "<nil>", "<nil>"
	if e.Quantity != nil {
		q = fmt.Sprint(*e.Quantity)
	}
	if e.Value != nil {
		v = fmt.Sprint(*e.Value)
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s", e.SubjectID, e.EventTime.UTC().Format(time.RFC3339Nano), e.EventType, e.ItemID, s(e.Category), q, v, s(e.Region))
}

func sameEvents(t *testing.T, got, want []dataset.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := eventString(got[i]), eventString(want[i]); g != w {
			t.Fatalf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

func TestEventsRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		perFile int
		opts    []parquet.WriterOption
	}{
		{"one file", 5000, nil},
		{"many files", 1700, nil},
		// Small pages and row groups: many pages per chunk, many units.
		{"small pages", 5000, []parquet.WriterOption{parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(333)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dataset.NewMemStore(t.Name())
			want := testEvents(5000, 7)
			writeEvents(t, s, "events", want, tc.perFile, tc.opts...)
			sameEvents(t, scanAll(t, dataset.Ref{Store: s, Key: "events"}), want)
		})
	}
}

// foreignEvent is events data from another tool: plain (not dictionary)
// strings, millisecond timestamps, an extra column, no region column.
type foreignEvent struct {
	EventTime int64  `parquet:"event_time,timestamp(millisecond)"`
	SubjectID string `parquet:"subject_id"`
	EventType string `parquet:"event_type"`
	ItemID    string `parquet:"item_id"`
	Extra     string `parquet:"internal_note"`
	Quantity  *int32 `parquet:"quantity,optional"`
}

func TestForeignEventsFile(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	var buf bytes.Buffer
	rows := []foreignEvent{
		{EventTime: 1764547200123, SubjectID: "tok_a", EventType: "view", ItemID: "X", Extra: "secret", Quantity: nil},
		{EventTime: 1764547201000, SubjectID: "tok_b", EventType: "purchase", ItemID: "Y", Quantity: ptr(int32(3))},
		{EventTime: 1764547202000, SubjectID: "tok_a", EventType: "view", ItemID: "Y"},
	}
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if err := dataset.PutBytes(ctx, s, "raw/part-0.parquet", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, dataset.Ref{Store: s, Key: "raw"})
	want := []dataset.Event{
		{SubjectID: "tok_a", EventTime: time.UnixMilli(1764547200123).UTC(), EventType: "view", ItemID: "X"},
		{SubjectID: "tok_b", EventTime: time.UnixMilli(1764547201000).UTC(), EventType: "purchase", ItemID: "Y", Quantity: ptr(int64(3))},
		{SubjectID: "tok_a", EventTime: time.UnixMilli(1764547202000).UTC(), EventType: "view", ItemID: "Y"},
	}
	sameEvents(t, got, want)
}

func TestBadParquetInput(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	write := func(key string, rows any) {
		var buf bytes.Buffer
		w := parquet.NewWriter(&buf, parquet.SchemaOf(reflectElem(rows)))
		v := reflectRows(rows)
		for _, r := range v {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := dataset.PutBytes(ctx, s, key, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	type noSubject struct {
		EventTime int64  `parquet:"event_time,timestamp(microsecond)"`
		EventType string `parquet:"event_type"`
		ItemID    string `parquet:"item_id"`
	}
	write("missing.parquet", []noSubject{{1, "view", "x"}})
	type stringTime struct {
		SubjectID string `parquet:"subject_id"`
		EventTime string `parquet:"event_time"`
		EventType string `parquet:"event_type"`
		ItemID    string `parquet:"item_id"`
	}
	write("wrongtype.parquet", []stringTime{{"a", "yesterday", "view", "x"}})
	type intValue struct {
		SubjectID string `parquet:"subject_id"`
		EventTime int64  `parquet:"event_time,timestamp(microsecond)"`
		EventType string `parquet:"event_type"`
		ItemID    string `parquet:"item_id"`
		Value     string `parquet:"value"`
	}
	write("wrongvalue.parquet", []intValue{{"a", 1, "view", "x", "ten"}})
	type nullSubject struct {
		SubjectID *string `parquet:"subject_id,optional"`
		EventTime int64   `parquet:"event_time,timestamp(microsecond)"`
		EventType string  `parquet:"event_type"`
		ItemID    string  `parquet:"item_id"`
	}
	write("nullsubject.parquet", []nullSubject{{ptr("a"), 1, "view", "x"}, {nil, 2, "view", "y"}})
	dataset.PutBytes(ctx, s, "text.parquet", []byte("subject_id,event_time\na,1\n"))
	good := writeEvents(t, s, "good", testEvents(100, 1), 100)
	data, err := dataset.ReadAll(ctx, s, "good/"+good.Files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	dataset.PutBytes(ctx, s, "truncated.parquet", data[:len(data)-100])
	dataset.PutBytes(ctx, s, "tiny.parquet", []byte("PAR1"))

	tests := []struct {
		key     string
		wantErr error
		words   []string // the message must name these
	}{
		{"missing.parquet", dataset.ErrSchema, []string{"missing.parquet", `"subject_id"`, "missing"}},
		{"wrongtype.parquet", dataset.ErrSchema, []string{"wrongtype.parquet", `"event_time"`, "timestamp"}},
		{"wrongvalue.parquet", dataset.ErrSchema, []string{"wrongvalue.parquet", `"value"`, "double"}},
		{"nullsubject.parquet", dataset.ErrCorrupt, []string{"nullsubject.parquet", `"subject_id"`, "null"}},
		{"text.parquet", dataset.ErrNotParquet, []string{"text.parquet"}},
		{"truncated.parquet", dataset.ErrNotParquet, []string{"truncated.parquet"}},
		{"tiny.parquet", dataset.ErrNotParquet, []string{"tiny.parquet"}},
		{"absent.parquet", dataset.ErrNotExist, []string{"absent.parquet"}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := func() error {
				f, err := dataset.OpenParquet(ctx, s, tc.key, dataset.EventsContract)
				if err != nil {
					return err
				}
				defer f.Close()
				p, err := f.Project()
				if err != nil {
					return err
				}
				var b dataset.Batch
				for rg := range f.NumRowGroups() {
					if err := f.ReadRowGroup(ctx, rg, p, nil, &b); err != nil {
						return err
					}
				}
				return nil
			}()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func reflectElem(rows any) any { return reflect.New(reflect.TypeOf(rows).Elem()).Interface() }

func reflectRows(rows any) []any {
	v := reflect.ValueOf(rows)
	out := make([]any, v.Len())
	for i := range out {
		out[i] = v.Index(i).Interface()
	}
	return out
}

func TestOutputCommitProtocol(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	ref := dataset.Ref{Store: s, Key: "out"}

	// A first write that has not committed is refused, not read partially.
	out, err := dataset.NewOutput(ctx, s, "out", dataset.EventsContract, "test")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := dataset.CreateParquet[dataset.Event](ctx, out, "part.parquet")
	w.Write(testEvents(10, 1))
	w.Close()
	if _, err := dataset.Inputs(ctx, ref, dataset.Window{}); !errors.Is(err, dataset.ErrNotCommitted) {
		t.Fatalf("uncommitted output: %v, want ErrNotCommitted", err)
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first := testEvents(10, 1)
	sameEvents(t, scanAll(t, ref), first)

	// A second write that crashes before its manifest leaves the first
	// output as readers see it.
	crashed, _ := dataset.NewOutput(ctx, s, "out", dataset.EventsContract, "test")
	w, _ = dataset.CreateParquet[dataset.Event](ctx, crashed, "part.parquet")
	w.Write(testEvents(20, 2))
	w.Close()
	sameEvents(t, scanAll(t, ref), first) // no Commit, no Abort: a crash

	// A committed rewrite replaces the output and removes the old files.
	second := testEvents(30, 3)
	m := writeEvents(t, s, "out", second, 30)
	sameEvents(t, scanAll(t, ref), second)
	if _, err := dataset.VerifyManifest(ctx, s, "out"); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for info, err := range s.List(ctx, "out/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	// The crashed write's orphan remains (readers never see it); the first
	// output's file is gone.
	if len(keys) != 3 || !slices.Contains(keys, "out/"+m.Files[0].Key) {
		t.Errorf("after rewrite the prefix holds %q", keys)
	}

	// Tampering is detected.
	dataset.PutBytes(ctx, s, "out/"+m.Files[0].Key, []byte("changed"))
	if _, err := dataset.VerifyManifest(ctx, s, "out"); !errors.Is(err, dataset.ErrChecksum) {
		t.Fatalf("VerifyManifest after tampering: %v, want ErrChecksum", err)
	}
}

func TestOutputAbort(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	out, _ := dataset.NewOutput(ctx, s, "o", nil, "test")
	if err := out.PutFile(ctx, "a.json", []byte("{}"), 0); err != nil {
		t.Fatal(err)
	}
	w, _ := dataset.CreateParquet[dataset.Event](ctx, out, "b.parquet")
	w.Write(testEvents(5, 1))
	w.Abort()
	out.Abort(ctx)
	for info := range s.List(ctx, "") {
		t.Errorf("abort left %s", info.Key)
	}
	if err := out.PutFile(ctx, "_hidden.json", nil, 0); !errors.Is(err, dataset.ErrBadKey) {
		t.Errorf("hidden output file: %v, want ErrBadKey", err)
	}
}

// A first write that crashed (no Commit, no Abort) leaves files and the
// _PENDING marker; the next write's Commit removes them.
func TestOutputCrashedFirstWrite(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	crashed, _ := dataset.NewOutput(ctx, s, "o", nil, "test")
	crashed.PutFile(ctx, "a.json", []byte("{}"), 0)
	crashed.PutFile(ctx, "b.json", []byte("{}"), 0)
	if _, err := dataset.ReadManifest(ctx, s, "o"); !errors.Is(err, dataset.ErrNotCommitted) {
		t.Fatalf("crashed write: %v, want ErrNotCommitted", err)
	}
	out, _ := dataset.NewOutput(ctx, s, "o", nil, "test")
	out.PutFile(ctx, "a.json", []byte("[]"), 0)
	m, err := out.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for info := range s.List(ctx, "") {
		keys = append(keys, info.Key)
	}
	if want := []string{"o/_manifest.json", "o/" + m.Files[0].Key}; !slices.Equal(keys, want) {
		t.Errorf("after the rewrite: %v, want %v", keys, want)
	}
}

func TestInputsWindow(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	var buf bytes.Buffer
	parquet.Write(&buf, testEvents(3, 1))
	for _, k := range []string{"ev/dt=2026-11-01/a.parquet", "ev/dt=2026-11-02/a.parquet", "ev/dt=2026-11-03/a.parquet", "ev/_tmp/x.parquet", "ev/.hidden/y.parquet", "ev/notes.txt"} {
		dataset.PutBytes(ctx, s, k, buf.Bytes())
	}
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		w    dataset.Window
		want []string
	}{
		{dataset.Window{}, []string{"ev/dt=2026-11-01/a.parquet", "ev/dt=2026-11-02/a.parquet", "ev/dt=2026-11-03/a.parquet"}},
		{dataset.Window{From: day(2)}, []string{"ev/dt=2026-11-02/a.parquet", "ev/dt=2026-11-03/a.parquet"}},
		{dataset.Window{From: day(2), To: day(2).Add(5 * time.Hour)}, []string{"ev/dt=2026-11-02/a.parquet"}},
		{dataset.Window{To: day(1)}, []string{"ev/dt=2026-11-01/a.parquet"}},
	}
	for _, tc := range tests {
		got, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "ev"}, tc.w)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Inputs(%v) = %q, want %q", tc.w, got, tc.want)
		}
	}
	if _, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "ev"}, dataset.Window{From: day(10)}); !errors.Is(err, dataset.ErrNotExist) {
		t.Errorf("empty window: %v, want ErrNotExist", err)
	}
	dataset.PutBytes(ctx, s, "bad/dt=yesterday/a.parquet", buf.Bytes())
	if _, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "bad"}, dataset.Window{}); !errors.Is(err, dataset.ErrBadKey) {
		t.Errorf("bad partition: %v, want ErrBadKey", err)
	}
}

func TestReadRowsConsent(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	out, _ := dataset.NewOutput(ctx, s, "consent", dataset.ConsentContract, "test")
	w, _ := dataset.CreateParquet[dataset.Consent](ctx, out, "c.parquet")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := []dataset.Consent{
		{SubjectID: "a", Purpose: ptr("marketing"), Status: "granted", RecordedAt: at, Source: "cmp", Jurisdiction: ptr("GDPR")},
		{SubjectID: "b", Status: "granted", RecordedAt: at, Source: "tcf", TCString: ptr("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")},
	}
	w.Write(rows)
	w.Close()
	out.Commit(ctx, nil)
	keys, _ := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: "consent"}, dataset.Window{})
	f, err := dataset.OpenParquet(ctx, s, keys[0], dataset.ConsentContract)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []dataset.Consent
	err = dataset.ReadRows(ctx, f, func(b []dataset.Consent) error {
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || *got[0].Purpose != "marketing" || got[1].Purpose != nil || *got[1].TCString != *rows[1].TCString || !got[0].RecordedAt.Equal(at) {
		t.Fatalf("read back %+v", got)
	}
	// The events contract rejects a consent file.
	if _, err := dataset.OpenParquet(ctx, s, keys[0], dataset.EventsContract); !errors.Is(err, dataset.ErrSchema) {
		t.Fatalf("consent as events: %v, want ErrSchema", err)
	}
}

// The output tables round-trip through the writer and the contract check.
func TestOutputTables(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	roundTrip := func(name string, c *dataset.Contract, write func(*dataset.Output) error, read func(*dataset.ParquetFile) (int, error), want int) {
		t.Helper()
		out, err := dataset.NewOutput(ctx, s, name, c, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := out.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: name}, dataset.Window{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := dataset.OpenParquet(ctx, s, keys[0], c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer f.Close()
		n, err := read(f)
		if err != nil || n != want {
			t.Fatalf("%s: read %d rows (%v), want %d", name, n, err, want)
		}
	}
	roundTrip("cohorts", dataset.CohortAssignmentsContract, func(o *dataset.Output) error {
		w, _ := dataset.CreateParquet[dataset.CohortAssignment](ctx, o, "a.parquet")
		w.Write([]dataset.CohortAssignment{{SubjectID: "tok_a", CohortID: 3, Distance: 1.5, RunID: "r1"}})
		return w.Close()
	}, func(f *dataset.ParquetFile) (int, error) {
		n := 0
		err := dataset.ReadRows(ctx, f, func(rows []dataset.CohortAssignment) error {
			if rows[0].CohortID != 3 || rows[0].RunID != "r1" {
				t.Errorf("read %+v", rows[0])
			}
			n += len(rows)
			return nil
		})
		return n, err
	}, 1)
	roundTrip("factors", dataset.ItemFactorsContract, func(o *dataset.Output) error {
		w, _ := dataset.CreateParquet[dataset.ItemFactor](ctx, o, "f.parquet")
		w.Write([]dataset.ItemFactor{{ItemID: "SKU1", Bias: 0.5, Vector: []float32{1, 2, 3}}, {ItemID: "SKU2", Vector: []float32{4, 5, 6}}})
		return w.Close()
	}, func(f *dataset.ParquetFile) (int, error) {
		n := 0
		err := dataset.ReadRows(ctx, f, func(rows []dataset.ItemFactor) error {
			if len(rows[1].Vector) != 3 || rows[1].Vector[2] != 6 {
				t.Errorf("read %+v", rows[1])
			}
			n += len(rows)
			return nil
		})
		return n, err
	}, 2)
	roundTrip("recs", dataset.RecommendationsContract, func(o *dataset.Output) error {
		w, _ := dataset.CreateParquet[dataset.Recommendation](ctx, o, "r.parquet")
		w.Write([]dataset.Recommendation{{SubjectID: "tok_a", Rank: 1, ItemID: "SKU1", Score: 0.9}})
		return w.Close()
	}, func(f *dataset.ParquetFile) (int, error) {
		n := 0
		err := dataset.ReadRows(ctx, f, func(rows []dataset.Recommendation) error { n += len(rows); return nil })
		return n, err
	}, 1)
	// A factors file whose vector is not a list breaks the contract.
	type flat struct {
		ItemID string  `parquet:"item_id"`
		Bias   float64 `parquet:"bias"`
		Vector float64 `parquet:"vector"`
	}
	var buf bytes.Buffer
	parquet.Write(&buf, []flat{{"x", 1, 2}})
	dataset.PutBytes(ctx, s, "flat.parquet", buf.Bytes())
	if _, err := dataset.OpenParquet(ctx, s, "flat.parquet", dataset.ItemFactorsContract); !errors.Is(err, dataset.ErrSchema) {
		t.Errorf("flat vector: %v, want ErrSchema", err)
	}
}

// ReadRowGroupDistinct yields the distinct values ReadRowGroup does: from
// the dictionary alone where every data page is dictionary-encoded, from
// every row of a plain-encoded column.
func TestReadRowGroupDistinct(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	writeEvents(t, s, "dict", testEvents(3000, 3), 3000, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(1000))
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []foreignEvent{{EventTime: 1, SubjectID: "tok_a", EventType: "view", ItemID: "X"},
		{EventTime: 2, SubjectID: "tok_b", EventType: "view", ItemID: "X"}}); err != nil {
		t.Fatal(err)
	}
	if err := dataset.PutBytes(ctx, s, "plain/part-0.parquet", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix   string
		dictOnly bool
	}{{"dict", true}, {"plain", false}}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			keys, err := dataset.Inputs(ctx, dataset.Ref{Store: s, Key: tc.prefix}, dataset.Window{})
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys %v: %v", keys, err)
			}
			f, err := dataset.OpenParquet(ctx, s, keys[0], dataset.EventsContract)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := f.Project("subject_id", "event_type", "item_id")
			if err != nil {
				t.Fatal(err)
			}
			var distinct dataset.Distinct // reused, as the PII guard does
			for rg := range f.File().RowGroups() {
				var full dataset.Batch
				if err := f.ReadRowGroup(ctx, rg, p, nil, &full); err != nil {
					t.Fatal(err)
				}
				if err := f.ReadRowGroupDistinct(ctx, rg, p, nil, &distinct); err != nil {
					t.Fatal(err)
				}
				for c := range full.Cols {
					want := map[string]bool{}
					for i := range full.Rows {
						v, _ := full.Cols[c].Str.At(i)
						want[v] = true
					}
					got := map[string]bool{}
					vals := &distinct.Cols[c]
					for i := range vals.Len() {
						got[string(vals.At(i))] = true
					}
					if !maps.Equal(got, want) || vals.Name != full.Cols[c].Name || distinct.Rows != full.Rows {
						t.Errorf("row group %d column %s: distinct %v, rows %v", rg, full.Cols[c].Name, got, want)
					}
					// ReadRowGroup's dictionary holds them too (a scan
					// may check them in place of ReadRowGroupDistinct).
					if !full.Cols[c].Distinct || !maps.Equal(got, setOf(full.Cols[c].Str.Dict)) {
						t.Errorf("row group %d column %s: Distinct %v, dictionary %v, distinct values %v", rg, full.Cols[c].Name, full.Cols[c].Distinct, full.Cols[c].Str.Dict, got)
					}
					if dictOnly := vals.Dictionary; dictOnly != tc.dictOnly {
						t.Errorf("row group %d column %s: dictionary only %v, want %v", rg, full.Cols[c].Name, dictOnly, tc.dictOnly)
					}
				}
			}
		})
	}
}

func setOf(values []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range values {
		m[v] = true
	}
	return m
}
