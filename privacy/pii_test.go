package privacy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/veil-privacy/veil/dataset"
)

func TestDetectPII(t *testing.T) {
	tests := []struct {
		in   string
		kind string
	}{
		{"contact: jane.doe@example.co.uk", PIIEmail},
		{"4111 1111 1111 1111", PIICard},
		{"card 5500-0000-0000-0004 exp", PIICard},
		{"from 192.168.10.42", PIIIPv4},
		{"2001:db8::8a2e:370:7334", PIIIPv6},
		{"::1", PIIIPv6},
		{"+44 20 7946 0958", PIIPhone},
		{"0044 20 7946 0958", PIIPhone},
		{"(030) 1234 5678", PIIPhone},
		// Not identifiers:
		{"tok_synth_4bHk2Qx9-Zq0mN1vB8cT7yU6iO5pA3sD2fG1hJ0kL9z", ""},
		{"SKU000123", ""},
		{"85123A", ""},
		{"2026-11-28", ""},
		{"2026-11-28T10:15:00Z", ""},
		{"4111 1111 1111 1112", ""}, // fails Luhn
		{"1111111111111111", ""},    // one digit repeated
		{"999.1.1.1", ""},
		{"home/decor", ""},
		{"US-CA", ""},
		{"version 1.2.3", ""},
		{"12:30:45", ""},
	}
	for _, tc := range tests {
		kind, _, ok := DetectPII(tc.in)
		if (tc.kind == "") == ok || kind != tc.kind {
			t.Errorf("DetectPII(%q) = %q, %v; want %q", tc.in, kind, ok, tc.kind)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ kind, in, want string }{
		{PIIEmail, "jane.doe@example.com", "j*******@e******.com"},
		{PIICard, "4111111111111111", "************1111"},
		{PIIIPv4, "192.168.10.42", "192.*.*.*"},
		{PIIPhone, "+44 20 7946 0958", "+44***********58"},
	} {
		if got := Redact(tc.kind, tc.in); got != tc.want {
			t.Errorf("Redact(%s, %q) = %q, want %q", tc.kind, tc.in, got, tc.want)
		}
	}
}

type leaky struct {
	SubjectID string `parquet:"subject_id"`
	Note      string `parquet:"note,dict"`
	Code      int64  `parquet:"code"`
}

func writeLeaky(t *testing.T, s dataset.Store, key string, rows []leaky, opts ...parquet.WriterOption) {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[leaky](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	dataset.PutBytes(ctx, s, key, buf.Bytes())
}

func TestScanPII(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	clean := make([]leaky, 1000)
	for i := range clean {
		clean[i] = leaky{SubjectID: "tok_x_" + strings.Repeat("a", i%7), Note: "ok", Code: int64(i)}
	}
	writeLeaky(t, s, "clean.parquet", clean)
	dirty := append([]leaky(nil), clean...)
	dirty[777].Note = "call me on +44 20 7946 0958"
	writeLeaky(t, s, "dirty.parquet", dirty)
	pol := DefaultPolicy()
	rep, err := ScanPII(ctx, s, []string{"clean.parquet"}, pol)
	if err != nil || rep.Columns != 2 || rep.RowsScanned != 1000 {
		t.Fatalf("clean: %+v, %v", rep, err)
	}
	_, err = ScanPII(ctx, s, []string{"clean.parquet", "dirty.parquet"}, pol)
	var pe *PIIError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPII) {
		t.Fatalf("dirty: %v, want a PIIError", err)
	}
	if f := pe.Findings[0]; f.Column != "note" || f.Kind != PIIPhone || !strings.Contains(f.File, "dirty.parquet") || strings.Contains(err.Error(), "7946") {
		t.Errorf("finding %+v, error %q", f, err)
	}
	// An allowed column is not scanned.
	pol.PII.AllowColumns = []string{"note"}
	if _, err := ScanPII(ctx, s, []string{"dirty.parquet"}, pol); err != nil {
		t.Errorf("allowed column: %v", err)
	}
	// A large file is sampled, but statistics catch an identifier in a row
	// group that the sample skips when it is the smallest or largest value.
	big := make([]leaky, 50000)
	for i := range big {
		big[i] = leaky{SubjectID: "tok_b", Note: "note-" + string(rune('a'+i%20)), Code: int64(i)}
	}
	big[49999].Note = "zz admin@shop.example"
	writeLeaky(t, s, "big.parquet", big, parquet.MaxRowsPerRowGroup(5000))
	pol = DefaultPolicy()
	pol.PII.SampleRows = 10000
	rep, err = ScanPII(ctx, s, []string{"big.parquet"}, pol)
	if !errors.As(err, &pe) || pe.Findings[0].Kind != PIIEmail {
		t.Fatalf("big: %v (report %+v)", err, rep)
	}
	if rep.RowsScanned > 15000 {
		t.Errorf("scanned %d rows of a large file with a 10000-row sample", rep.RowsScanned)
	}
}

func FuzzDetectPII(f *testing.F) {
	for _, s := range []string{"jane@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "::1", "10.0.0.1", "tok_x",
		"tok_12a34b56c78d90e12f34g56h", "a0(30) 12-34.56+78x", "4111-1111 1111.1111"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if kind, m, ok := DetectPII(s); ok {
			if kind == "" || m == "" {
				t.Fatalf("found %q %q", kind, m)
			}
			if !mayHoldPII(s) {
				t.Fatalf("mayHoldPII(%q) is false, but DetectPII finds %s %q", s, kind, m)
			}
			Redact(kind, m)
		}
	})
}

// TestMayHoldPII: the PII guard skips the values mayHoldPII rules out, so
// it must never rule out one DetectPII flags (FuzzDetectPII checks the
// same on generated values).
func TestMayHoldPII(t *testing.T) {
	flagged := 0
	for _, s := range []string{"contact: jane.doe@example.co.uk", "4111 1111 1111 1111", "card 5500-0000-0000-0004 exp",
		"from 192.168.10.42", "2001:db8::8a2e:370:7334", "::1", "+44 20 7946 0958", "0044 20 7946 0958", "(030) 1234 5678",
		strings.Repeat("x", 5000) + "jane@example.com", strings.Repeat("y", 4090) + "a@b.de"} {
		if _, _, ok := DetectPII(s); ok {
			flagged++
			if !mayHoldPII(s) {
				t.Errorf("mayHoldPII(%.40q) is false, but DetectPII flags it", s)
			}
		}
	}
	// Values near the limits of the run rule: 9 digits with separators
	// and a 0 (a phone number), 13 digits with a dash (a card).
	for _, s := range []string{"x 0301234567 x", "(030) 123-4567", "+4930 1234 56", "4111-1111-1111-1"} {
		if !mayHoldPII(s) {
			t.Errorf("mayHoldPII(%q) is false; want true", s)
		}
	}
	if flagged < 9 {
		t.Fatalf("only %d examples flagged: the test checks too little", flagged)
	}
	// Many digits, but no run of digits and " ().+-" holding 9 of them,
	// the most a card or phone match is made of: ruled out without a
	// regular expression (the first pass alone let them through).
	for _, s := range []string{"tok_synth_bHkQxZqmNvBcTyUiOpAsDfGhJkLz", "SKU000294", "view", "DE",
		"tok_synth_4bHk2Qx9-Zq0mN1vB8cT7yU6iO5pA3sD2fG1hJ0kL9z", "tok_12a34b56c78d90e12f34g56h", "2026-11-28/0012345a678"} {
		if mayHoldPII(s) {
			t.Errorf("mayHoldPII(%q): want false", s)
		}
	}
}

// TestScanPIIOrder scans many files at once (in parallel) and gets what a
// scan one file after another gets: the findings in the order of the keys,
// the first failing file's error, the totals of every file.
func TestScanPIIOrder(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	var keys []string
	for i := range 12 {
		rows := make([]leaky, 200)
		for j := range rows {
			rows[j] = leaky{SubjectID: "tok_x", Note: "ok", Code: int64(j)}
		}
		switch i {
		case 3:
			rows[10].Note = "mail jane@example.com"
		case 8:
			rows[20].Note = "call +44 20 7946 0958"
		}
		key := fmt.Sprintf("part-%02d.parquet", i)
		writeLeaky(t, s, key, rows)
		keys = append(keys, key)
	}
	for range 5 {
		rep, err := ScanPII(ctx, s, keys, DefaultPolicy())
		var pe *PIIError
		if !errors.As(err, &pe) || len(pe.Findings) != 2 || !strings.Contains(pe.Findings[0].File, "part-03") || !strings.Contains(pe.Findings[1].File, "part-08") {
			t.Fatalf("findings %+v, %v", pe, err)
		}
		if rep.Files != 12 || rep.RowsScanned != 12*200 || rep.RowsTotal != 12*200 {
			t.Fatalf("report %+v", rep)
		}
	}
	// A missing file fails the scan with its own error, also when later
	// files fail too.
	_, err := ScanPII(ctx, s, append([]string{"part-00.parquet", "missing.parquet"}, keys...), DefaultPolicy())
	if err == nil || !strings.Contains(err.Error(), "missing.parquet") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestMayHoldPIIRandom checks on many values made of the bytes the card
// and phone patterns are made of (and a few that break their runs) that
// mayHoldPII never rules out one DetectPII flags, and that the run rule
// does rule out some.
func TestMayHoldPIIRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 1))
	const alphabet = "0123456789012345678900000+++   ---...()()aZ_/"
	flagged, ruledOut := 0, 0
	buf := make([]byte, 40)
	for range 200000 {
		b := buf[:1+r.IntN(len(buf))]
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		if _, _, ok := DetectPII(s); ok {
			flagged++
			if !mayHoldPII(s) {
				t.Fatalf("mayHoldPII(%q) is false, but DetectPII flags it", s)
			}
		} else if h := hintsOf(s); h.digits >= 9 && !mayHoldPII(s) {
			ruledOut++
		}
	}
	if flagged < 1000 || ruledOut < 1000 {
		t.Fatalf("%d values flagged, %d ruled out by the run rule: the test checks too little", flagged, ruledOut)
	}
}

// TestScanGuard: a guard that takes the subject tokens from the scan's own
// batches refuses exactly what ScanPII refuses, with ScanPII's error, and
// lets through what it lets through.
func TestScanGuard(t *testing.T) {
	// Events of 3 files of 3 row groups; file b may hold an identifier
	// at a row, sorted between the other tokens so that the statistics
	// of its row group do not show it.
	write := func(s dataset.Store, key string, row int, subject, item string) {
		t.Helper()
		rows := make([]dataset.Event, 3000)
		for i := range rows {
			rows[i] = dataset.Event{SubjectID: fmt.Sprintf("tok_m%04d", i%997), EventTime: time.Unix(int64(i), 0), EventType: "view", ItemID: "SKU1"}
		}
		if subject != "" {
			rows[row].SubjectID = subject
		}
		if item != "" {
			rows[row].ItemID = item
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[dataset.Event](&buf, parquet.MaxRowsPerRowGroup(1000))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		w.Close()
		dataset.PutBytes(ctx, s, key, buf.Bytes())
	}
	tests := []struct {
		name          string
		row           int
		subject, item string
		sample        int
		refused       bool
	}{
		{"clean", 0, "", "", 0, false},
		{"e-mail token", 500, "tok_m05 jane@example.com", "", 0, true},
		{"phone token", 2500, "tok_m05 +44 20 7946 0958", "", 0, true},
		{"e-mail item", 500, "", "SKU1 jane@example.com", 0, true},
		{"token and item", 500, "tok_m05 jane@example.com", "SKU1 +44 20 7946 0958", 0, true},
		// A sample of 1000 rows reads row group 0 of each file only.
		{"token in a row group the sample skips", 1500, "tok_m05 jane@example.com", "", 1000, false},
		{"token in the sample", 999, "tok_m05 jane@example.com", "", 1000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dataset.NewMemStore(t.Name())
			keys := []string{"a.parquet", "b.parquet", "c.parquet"}
			for _, k := range keys {
				if k == "b.parquet" {
					write(s, k, tc.row, tc.subject, tc.item)
				} else {
					write(s, k, 0, "", "")
				}
			}
			pol := DefaultPolicy()
			pol.PII.SampleRows = tc.sample
			_, want := ScanPII(ctx, s, keys, pol)
			if (want != nil) != tc.refused {
				t.Fatalf("ScanPII: %v; want refused %v", want, tc.refused)
			}
			got := guardedScan(t, s, keys, pol, nil)
			if fmt.Sprint(got) != fmt.Sprint(want) || (want != nil && !errors.Is(got, ErrPII)) {
				t.Errorf("guarded scan: %v\nScanPII: %v", got, want)
			}
			// A failed scan fails with its own error, unless the
			// files are refused.
			failed := errors.New("scan failed")
			if got := guardedScan(t, s, keys, pol, failed); (want == nil && got != failed) || (want != nil && fmt.Sprint(got) != fmt.Sprint(want)) {
				t.Errorf("guarded scan that fails: %v\nScanPII: %v", got, want)
			}
		})
	}
	// An allowed column is not checked, in the scan's batches either,
	// also when the guard checks no column of the file.
	s := dataset.NewMemStore(t.Name())
	write(s, "a.parquet", 500, "tok_m05 jane@example.com", "")
	pol := DefaultPolicy()
	pol.PII.AllowColumns = []string{"subject_id"}
	if err := guardedScan(t, s, []string{"a.parquet"}, pol, nil); err != nil {
		t.Errorf("allowed column: %v", err)
	}
	pol.PII.AllowColumns = []string{"subject_id", "event_type", "item_id", "category", "region"}
	sc, err := dataset.OpenScan(ctx, s, []string{"a.parquet"}, dataset.EventsContract, "subject_id", "event_time")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	g, err := GuardScan(ctx, sc, pol, 1, "subject_id")
	if err != nil || len(g.picks[0]) != 3 || slices.Contains(g.picks[0], true) {
		t.Errorf("no column checked: %v, row groups read %v", err, g.picks)
	}
}

// guardedScan scans the events of keys with a ScanGuard checking
// subject_id in the scan's batches, as veil datasets filter does, and
// returns the verdict; the scan fails with scanErr if it is not nil.
func guardedScan(t *testing.T, s dataset.Store, keys []string, pol *Policy, scanErr error) error {
	t.Helper()
	sc, err := dataset.OpenScan(ctx, s, keys, dataset.EventsContract, "subject_id", "event_time")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	g, err := GuardScan(ctx, sc, pol, 2, "subject_id")
	if err != nil {
		return err
	}
	err = sc.Run(ctx, 2, func(w int, u dataset.Unit, b *dataset.Batch) error {
		g.Check(w, u, b)
		return scanErr
	})
	return g.Verdict(ctx, err)
}

type plainNote struct {
	SubjectID string `parquet:"subject_id"`
	Note      string `parquet:"note,plain"`
}

// footerOf decodes a Parquet file's footer.
func footerOf(t *testing.T, file []byte) *format.FileMetaData {
	t.Helper()
	n := len(file)
	size := int(binary.LittleEndian.Uint32(file[n-8 : n-4]))
	var md format.FileMetaData
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, file[n-8-size:n-8], &md); err != nil {
		t.Fatal(err)
	}
	return &md
}

// lieAboutEncoding rewrites a Parquet file's footer so that every column
// chunk's encoding statistics claim dictionary-encoded data pages, as a
// writer could, whatever its pages hold.
func lieAboutEncoding(t *testing.T, file []byte) []byte {
	t.Helper()
	n := len(file)
	size := int(binary.LittleEndian.Uint32(file[n-8 : n-4]))
	md := footerOf(t, file)
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			m := &md.RowGroups[i].Columns[j].MetaData
			m.EncodingStats = []format.PageEncodingStats{{PageType: format.DataPage, Encoding: format.RLEDictionary, Count: 1}}
		}
	}
	footer, err := thrift.Marshal(&thrift.CompactProtocol{}, md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(slices.Clone(file[:n-8-size]), footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...)
}

// TestScanPIIDistrustsEncodingStats: a column whose footer claims
// dictionary-encoded pages while they are plain (no dictionary page, or
// plain pages beside one) is decoded in full, not read from its dictionary
// alone: the footer is the writer's word, and a phone number in a plain
// page between clean minimum and maximum values would pass unseen.
func TestScanPIIDistrustsEncodingStats(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	rows := make([]plainNote, 3000)
	for i := range rows {
		rows[i] = plainNote{SubjectID: "tok_a", Note: fmt.Sprintf("note-%c", 'b'+i%20)}
	}
	rows[1500].Note = "note-k call +44 20 7946 0958"
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[plainNote](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	dataset.PutBytes(ctx, s, "plain.parquet", lieAboutEncoding(t, buf.Bytes()))
	_, err := ScanPII(ctx, s, []string{"plain.parquet"}, DefaultPolicy())
	var pe *PIIError
	if !errors.As(err, &pe) || pe.Findings[0].Kind != PIIPhone {
		t.Fatalf("plain pages under a dictionary claim: %v, want the phone number found", err)
	}
	// Mixed: a dictionary page, then plain pages (a writer falls back to
	// plain when the dictionary grows too large).
	mixed := make([]leaky, 3000)
	for i := range mixed {
		mixed[i] = leaky{SubjectID: "tok_a", Note: fmt.Sprintf("note-%04d-%s", i, strings.Repeat("x", 200)), Code: int64(i)}
	}
	mixed[2500].Note = "note-2500 call +44 20 7946 0958"
	buf.Reset()
	w2 := parquet.NewGenericWriter[leaky](&buf, parquet.PageBufferSize(4096), parquet.DictionaryMaxBytes(8192))
	if _, err := w2.Write(mixed); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	plain, dict := 0, 0
	for _, rg := range footerOf(t, buf.Bytes()).RowGroups {
		for _, st := range rg.Columns[1].MetaData.EncodingStats {
			switch {
			case st.PageType == format.DictionaryPage:
				dict++
			case st.Encoding == format.Plain:
				plain++
			}
		}
	}
	if plain == 0 || dict == 0 {
		t.Fatalf("the mixed file has %d dictionary and %d plain pages: it tests nothing", dict, plain)
	}
	dataset.PutBytes(ctx, s, "mixed.parquet", lieAboutEncoding(t, buf.Bytes()))
	if _, err := ScanPII(ctx, s, []string{"mixed.parquet"}, DefaultPolicy()); !errors.As(err, &pe) || pe.Findings[0].Kind != PIIPhone {
		t.Fatalf("dictionary then plain pages under a dictionary claim: %v, want the phone number found", err)
	}
}
