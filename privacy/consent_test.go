package privacy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/veil-privacy/veil/dataset"
)

var ctx = context.Background()

// encodeTCString builds a core segment with the given consented purposes
// and vendors (bit-field encoding), for tests.
func encodeTCString(purposes []int, vendors []int) string {
	var bits []byte
	put := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, byte(v>>i)&1)
		}
	}
	ds := uint64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() / 100)
	put(2, 6)
	put(ds, 36)
	put(ds, 36)
	put(7, 12) // CMP id
	put(1, 12)
	put(1, 6)
	put(4, 6) // "E"
	put(13, 6)
	put(100, 12)
	put(4, 6)
	put(0, 1)
	put(0, 1)
	put(0, 12)
	var pc uint64
	for _, p := range purposes {
		pc |= 1 << (24 - p)
	}
	put(pc, 24)
	put(0, 24)
	put(0, 1)
	put(0, 6)
	put(0, 6)
	maxV := 0
	for _, v := range vendors {
		maxV = max(maxV, v)
	}
	put(uint64(maxV), 16)
	put(0, 1)
	for v := 1; v <= maxV; v++ {
		set := uint64(0)
		for _, w := range vendors {
			if w == v {
				set = 1
			}
		}
		put(set, 1)
	}
	put(0, 16) // no LI vendors
	put(0, 1)
	for len(bits)%8 != 0 {
		bits = append(bits, 0)
	}
	out := make([]byte, len(bits)/8)
	for i, b := range bits {
		out[i/8] |= b << (7 - i%8)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

func TestEncodeTCStringRoundTrip(t *testing.T) {
	tc, err := DecodeTCString(encodeTCString([]int{3, 5, 8}, []int{1, 9}))
	if err != nil {
		t.Fatal(err)
	}
	if !tc.PurposeConsent(3) || !tc.PurposeConsent(5) || !tc.PurposeConsent(8) || tc.PurposeConsent(4) || !tc.VendorConsent(1) || !tc.VendorConsent(9) || tc.VendorConsent(2) {
		t.Fatalf("round trip %+v", tc)
	}
}

func ptr[T any](v T) *T { return &v }

var day = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

func at(daysBefore int) time.Time { return day.AddDate(0, 0, -daysBefore).Add(9 * time.Hour) }

func consentRow(subject, purpose, status string, when time.Time) dataset.Consent {
	r := dataset.Consent{SubjectID: subject, Status: status, RecordedAt: when, Source: "cmp", Jurisdiction: ptr("GDPR")}
	if purpose != "" {
		r.Purpose = ptr(purpose)
	}
	return r
}

func grantAll(subject string, when time.Time) []dataset.Consent {
	var rows []dataset.Consent
	for _, p := range KnownPurposes {
		rows = append(rows, consentRow(subject, p, "granted", when))
	}
	return rows
}

func writeTable[T any](t *testing.T, s dataset.Store, prefix string, c *dataset.Contract, rows []T) *dataset.Ref {
	t.Helper()
	out, err := dataset.NewOutput(ctx, s, prefix, c, "test")
	if err != nil {
		t.Fatal(err)
	}
	w, err := dataset.CreateParquet[T](ctx, out, "part.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return &dataset.Ref{Store: s, Key: prefix}
}

// ledger builds the consent and erasure tables of the scenarios below.
func ledger(t *testing.T) (*dataset.Ref, *dataset.Ref) {
	s := dataset.NewMemStore(t.Name())
	var rows []dataset.Consent
	rows = append(rows, grantAll("alice", at(100))...)                     // granted everything
	rows = append(rows, consentRow("bob", Segmentation, "denied", at(50))) // denied segmentation
	rows = append(rows, consentRow("bob", Analytics, "granted", at(50)))
	rows = append(rows, grantAll("carol", at(100))...) // withdrew segmentation
	rows = append(rows, consentRow("carol", Segmentation, "withdrawn", at(3)))
	rows = append(rows, grantAll("dave", at(100))...) // withdrew, then granted again
	rows = append(rows, consentRow("dave", Segmentation, "withdrawn", at(10)))
	rows = append(rows, consentRow("dave", Segmentation, "granted", at(2)))
	rows = append(rows, grantAll("erin", at(100))...) // withdraws only after the logical date
	rows = append(rows, consentRow("erin", Segmentation, "withdrawn", at(-3)))
	rows = append(rows, grantAll("frank", at(-1))...) // grants only after the logical date
	rows = append(rows, grantAll("gina", at(100))...) // GPC opt-out, then grants again
	gpc := consentRow("gina", Marketing, "denied", at(20))
	gpc.Source = "gpc"
	rows = append(rows, gpc, consentRow("gina", Marketing, "granted", at(5)))
	rows = append(rows, grantAll("hank", at(100))...) // asks for erasure
	rows = append(rows, grantAll("ivan", at(100))...) // malformed row
	rows = append(rows, consentRow("ivan", Segmentation, "maybe", at(1)))
	rows = append(rows, consentRow("judy", Segmentation, "granted", at(5)), consentRow("judy", Segmentation, "denied", at(5))) // tie: deny wins
	tcGood := consentRow("kate", "", "granted", at(30))
	tcGood.Source, tcGood.TCString = "tcf", ptr(encodeTCString([]int{3, 4, 5, 6, 8, 9}, []int{1}))
	tcNoVendor := consentRow("liam", "", "granted", at(30))
	tcNoVendor.Source, tcNoVendor.TCString = "tcf", ptr(encodeTCString([]int{3, 4, 5, 6, 8, 9}, []int{2}))
	tcNoPurpose5 := consentRow("mona", "", "granted", at(30))
	tcNoPurpose5.Source, tcNoPurpose5.TCString = "tcf", ptr(encodeTCString([]int{3, 4, 6, 8, 9}, []int{1}))
	tcBad := consentRow("nina", "", "granted", at(30))
	tcBad.Source, tcBad.TCString = "tcf", ptr("COw4XqLOw4XqLAAAAAENAXCAAAAA!!")
	rows = append(rows, tcGood, tcNoVendor, tcNoPurpose5, tcBad)
	erasure := []dataset.Erasure{{SubjectID: "hank", RequestedAt: at(1)}, {SubjectID: "alice", RequestedAt: at(-2)}}
	return writeTable(t, s, "consent", dataset.ConsentContract, rows), writeTable(t, s, "erasure", dataset.ErasureContract, erasure)
}

func TestConsentIndex(t *testing.T) {
	consent, erasure := ledger(t)
	ix, err := BuildConsentIndex(ctx, DefaultPolicy(), consent, erasure, day)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subject, purpose string
		want             State
	}{
		{"alice", Segmentation, Granted},
		{"bob", Segmentation, Denied},
		{"bob", Analytics, Granted},
		{"bob", Marketing, NoRecord},
		{"carol", Segmentation, Withdrawn},
		{"carol", Analytics, Granted},
		{"dave", Segmentation, Granted},
		{"erin", Segmentation, Granted}, // the withdrawal is after the logical date
		{"frank", Segmentation, NoRecord},
		{"gina", Marketing, OptedOut}, // GPC wins over the later grant
		{"gina", Segmentation, Granted},
		{"ivan", Segmentation, Malformed},
		{"ivan", Analytics, Malformed},
		{"judy", Segmentation, Denied},
		{"kate", Segmentation, Granted},
		{"kate", Marketing, Granted},
		{"kate", Analytics, Granted},
		{"liam", Segmentation, Denied}, // our vendor has no consent
		{"mona", Segmentation, Denied}, // TCF purpose 5 missing
		{"mona", Personalization, Granted},
		{"nina", Segmentation, Malformed},
		{"nobody", Segmentation, NoRecord},
	}
	for _, tc := range tests {
		if got := ix.State(tc.subject, tc.purpose); got != tc.want {
			t.Errorf("%s/%s = %v, want %v", tc.subject, tc.purpose, got, tc.want)
		}
	}
	if !ix.Erased("hank") || ix.Erased("alice") {
		t.Errorf("erased: hank %v (want true), alice %v (want false: requested later)", ix.Erased("hank"), ix.Erased("alice"))
	}
	st := ix.Stats()
	if st.Malformed != 2 || st.TCStrings != 4 || st.OptOuts != 1 || st.Future != 5 || len(st.MalformedExamples) != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A consent file with nulls where values are required is read: the bad
// rows are malformed and their subjects do not consent.
func TestConsentNulls(t *testing.T) {
	type loose struct {
		SubjectID  *string    `parquet:"subject_id,optional"`
		Purpose    *string    `parquet:"purpose,optional"`
		Status     *string    `parquet:"status,optional"`
		RecordedAt *time.Time `parquet:"recorded_at,optional,timestamp(microsecond)"`
		Source     string     `parquet:"source"`
	}
	s := dataset.NewMemStore(t.Name())
	w := at(10)
	rows := []loose{
		{ptr("ok"), ptr(Segmentation), ptr("granted"), &w, "cmp"},
		{ptr("notime"), ptr(Segmentation), ptr("granted"), nil, "cmp"},
		{ptr("nostatus"), ptr(Segmentation), nil, &w, "cmp"},
		{nil, ptr(Segmentation), ptr("granted"), &w, "cmp"},
	}
	ref := writeTable(t, s, "consent", nil, rows)
	ix, err := BuildConsentIndex(ctx, DefaultPolicy(), ref, nil, day)
	if err != nil {
		t.Fatal(err)
	}
	if ix.State("ok", Segmentation) != Granted || ix.State("notime", Segmentation) != Malformed || ix.State("nostatus", Segmentation) != Malformed || ix.Stats().Malformed != 3 {
		t.Errorf("states %v %v %v, stats %+v", ix.State("ok", Segmentation), ix.State("notime", Segmentation), ix.State("nostatus", Segmentation), ix.Stats())
	}
}

func TestFilterApply(t *testing.T) {
	consent, erasure := ledger(t)
	pol := DefaultPolicy()
	ix, err := BuildConsentIndex(ctx, pol, consent, erasure, day)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFilter(pol, ix, []string{Segmentation, Marketing})
	if err != nil {
		t.Fatal(err)
	}
	// Retention for segmentation+marketing is the stricter 180 days.
	if want := day.AddDate(0, 0, -179); !f.RetentionStart().Equal(want) {
		t.Errorf("retention starts %s, want %s", f.RetentionStart(), want)
	}
	if want := day.AddDate(0, 0, 1); !f.End().Equal(want) {
		t.Errorf("window ends %s, want %s", f.End(), want)
	}
	subjects := []string{"alice", "bob", "carol", "dave", "gina", "hank", "ivan", "kate", "stranger", "alice", "dave"}
	times := []time.Time{at(1), at(1), at(1), at(1), at(1), at(1), at(1), at(1), at(1), at(200), day.AddDate(0, 0, 1)}
	b := &dataset.Batch{Rows: len(subjects), Cols: []dataset.ColumnData{
		{Name: "subject_id", Kind: dataset.KindString},
		{Name: "event_time", Kind: dataset.KindTimestamp},
	}}
	idx := map[string]int32{}
	for i, s := range subjects {
		x, ok := idx[s]
		if !ok {
			x = int32(len(b.Cols[0].Str.Dict))
			idx[s] = x
			b.Cols[0].Str.Dict = append(b.Cols[0].Str.Dict, s)
		}
		b.Cols[0].Str.Index = append(b.Cols[0].Str.Index, x)
		b.Cols[1].Int = append(b.Cols[1].Int, times[i].UnixMicro())
	}
	keep, err := f.Apply(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKeep := []bool{true, false, false, true, false, false, false, true, false, false, false}
	for i := range keep {
		if keep[i] != wantKeep[i] {
			t.Errorf("row %d (%s): keep %v, want %v", i, subjects[i], keep[i], wantKeep[i])
		}
	}
	r := f.Report()
	wantRows := map[string]int64{"denied": 1, "withdrawn": 1, "opted_out": 1, "erased": 1, "malformed_consent": 1, "no_consent": 1, "expired": 1, "after_logical_date": 1}
	for k, v := range wantRows {
		if r.RowsDropped[k] != v {
			t.Errorf("rows dropped %s = %d, want %d", k, r.RowsDropped[k], v)
		}
	}
	if r.RowsRead != 11 || r.RowsKept != 3 || r.SubjectsSeen != 9 || r.SubjectsKept != 3 || r.SubjectsDropped["expired"] != 0 {
		t.Errorf("report %+v", r)
	}
	// A second batch of the same subjects, its dictionary in another
	// order (as another file's is), counts rows again but no new subject:
	// marks follow the subject, in the index or not (stranger).
	b2 := &dataset.Batch{Rows: b.Rows, Cols: []dataset.ColumnData{
		{Name: "subject_id", Kind: dataset.KindString, Str: dataset.Strings{Dict: slices.Clone(b.Cols[0].Str.Dict)}},
		{Name: "event_time", Kind: dataset.KindTimestamp, Int: b.Cols[1].Int},
	}}
	slices.Reverse(b2.Cols[0].Str.Dict)
	for _, x := range b.Cols[0].Str.Index {
		b2.Cols[0].Str.Index = append(b2.Cols[0].Str.Index, int32(len(idx))-1-x)
	}
	if _, err := f.Apply(b2, nil); err != nil {
		t.Fatal(err)
	}
	r2 := f.Report()
	if r2.RowsRead != 22 || r2.RowsKept != 6 || r2.SubjectsSeen != 9 || r2.SubjectsKept != 3 || !maps.Equal(r2.SubjectsDropped, r.SubjectsDropped) {
		t.Errorf("after a second batch: report %+v, first %+v", r2, r)
	}
}

func TestPolicyFile(t *testing.T) {
	p, err := LoadPolicy("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Purposes[Marketing].TCFPurposes[0] != 4 || p.RetentionDays([]string{Analytics, Marketing}) != 180 {
		t.Errorf("policy %+v", p)
	}
	// The shipped file sets the demo's budget; the built-in default is the
	// shipped file without it (no budgets: each job states its own).
	if b, ok := p.Budgets["veil-demo/shop/events"]; !ok || b.Ledger != "veil-demo/ledger" || b.Epsilon != 20 || b.Delta != 1e-5 || b.Period != "month" {
		t.Errorf("configs/policy.yaml budgets %+v, want the demo's", p.Budgets)
	}
	if len(DefaultPolicy().Budgets) != 0 {
		t.Errorf("the built-in policy sets budgets %+v", DefaultPolicy().Budgets)
	}
	p.Budgets = nil
	if !reflect.DeepEqual(p, DefaultPolicy()) {
		t.Errorf("configs/policy.yaml and DefaultPolicy differ:\n%+v\n%+v", p, DefaultPolicy())
	}
	bad := map[string]string{
		"unknown key":           "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10, colour: red}\n",
		"unknown purpose":       "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  advertising: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\n",
		"bad tcf purpose":       "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [12], columns: [subject_id, event_time], retention_days: 10}\n",
		"bad column":            "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time, email], retention_days: 10}\n",
		"no event_time":         "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id], retention_days: 10}\n",
		"no retention":          "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time]}\n",
		"wrong version":         "version: 2\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\n",
		"not yaml":              "version: [1\n",
		"budget without ledger": "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {epsilon: 1, delta: 1.0e-5}\n",
		"budget ε 0":            "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {ledger: l, epsilon: 0, delta: 1.0e-5}\n",
		"budget ε inf":          "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {ledger: l, epsilon: .inf, delta: 1.0e-5}\n",
		"budget δ 1":            "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {ledger: l, epsilon: 1, delta: 1}\n",
		"budget period":         "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {ledger: l, epsilon: 1, delta: 1.0e-5, period: fortnight}\n",
		"budget unknown key":    "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nbudgets:\n  shop/events: {ledger: l, epsilon: 1, delta: 1.0e-5, dataset: x}\n",
		"opt-out undefined":     "version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\nopt_out: {purposes: [marketing]}\n",
	}
	for name, doc := range bad {
		if _, err := ParsePolicy("p.yaml", []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !containsAll(err.Error(), "p.yaml") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	_, err = ParsePolicy("p.yaml", []byte(bad["unknown key"]))
	if !containsAll(err.Error(), ":4:", "colour") {
		t.Errorf("unknown key error %q lacks the line", err)
	}
	pol := DefaultPolicy()
	if err := pol.CheckColumns([]string{Marketing}, []string{"item_id"}); err == nil {
		t.Error("marketing may not read item_id")
	}
	if err := pol.CheckPurposes([]string{"advertising"}); err == nil {
		t.Error("unknown purpose accepted")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func FuzzParsePolicy(f *testing.F) {
	data, _ := os.ReadFile("../configs/policy.yaml")
	f.Add(data)
	f.Add([]byte("version: 1\ntcf: {vendor_id: 1}\npurposes:\n  analytics: {tcf_purposes: [8], columns: [subject_id, event_time], retention_days: 10}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v does not wrap ErrPolicy", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted an invalid policy: %v", err)
		}
	})
}

// FuzzConsentParquet feeds arbitrary bytes as the consent table: building
// the index must return an error or an index, never panic.
func FuzzConsentParquet(f *testing.F) {
	var buf bytes.Buffer
	purpose := "marketing"
	tc := "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
	w := parquet.NewGenericWriter[dataset.Consent](&buf, parquet.MaxRowsPerRowGroup(2))
	w.Write([]dataset.Consent{
		{SubjectID: "tok_a", Purpose: &purpose, Status: "granted", RecordedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Source: "cmp", Jurisdiction: ptr("GDPR")},
		{SubjectID: "tok_b", Status: "granted", RecordedAt: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Source: "tcf", TCString: &tc, Jurisdiction: ptr("CCPA")},
		{SubjectID: "tok_c", Purpose: &purpose, Status: "withdrawn", RecordedAt: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), Source: "gpc"},
	})
	w.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		s := dataset.NewMemStore("fuzz")
		dataset.PutBytes(context.Background(), s, "consent/part.parquet", data)
		if pf, err := dataset.OpenParquet(context.Background(), s, "consent/part.parquet", lenientConsent); err == nil {
			// A footer may claim any number of rows (up to the reader's
			// limit); decoding millions of them is not the point here.
			big := pf.LargestRowGroup() > 1<<16
			pf.Close()
			if big {
				return
			}
		}
		ix, err := BuildConsentIndex(context.Background(), DefaultPolicy(), &dataset.Ref{Store: s, Key: "consent"}, nil, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
		if err == nil {
			ix.Decide("tok_a", []string{Marketing})
			ix.Jurisdiction("tok_b")
			if f, err := NewFilter(DefaultPolicy(), ix, []string{Marketing}); err == nil {
				f.RestrictJurisdictions([]string{"GDPR"})
			}
		}
	})
}

// A subject's jurisdiction is the one its latest record (at or before the
// logical date) names; a restricted filter drops every other subject as
// other_jurisdiction, and subjects with no records still as no_consent.
func TestJurisdictionSegregation(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	juris := func(rows []dataset.Consent, j string) []dataset.Consent {
		for i := range rows {
			if j == "" {
				rows[i].Jurisdiction = nil
			} else {
				rows[i].Jurisdiction = ptr(j)
			}
		}
		return rows
	}
	var rows []dataset.Consent
	rows = append(rows, juris(grantAll("eu", at(10)), "GDPR")...)
	rows = append(rows, juris(grantAll("us", at(10)), "CCPA")...)
	rows = append(rows, juris(grantAll("mover", at(100)), "GDPR")...) // moved to California
	rows = append(rows, juris([]dataset.Consent{consentRow("mover", Analytics, "granted", at(5))}, "CCPA")...)
	rows = append(rows, juris(grantAll("later", at(10)), "GDPR")...) // moves only after the logical date
	rows = append(rows, juris([]dataset.Consent{consentRow("later", Analytics, "granted", at(-2))}, "CCPA")...)
	rows = append(rows, juris(grantAll("nowhere", at(10)), "")...) // no jurisdiction on record
	rows = append(rows, juris(grantAll("tie", at(10)), "CCPA")...) // two names at one time: the later in sort order
	rows = append(rows, juris([]dataset.Consent{consentRow("tie", Analytics, "granted", at(10))}, "GDPR")...)
	ix, err := BuildConsentIndex(ctx, DefaultPolicy(), writeTable(t, s, "consent", nil, rows), nil, day)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"eu": "GDPR", "us": "CCPA", "mover": "CCPA", "later": "GDPR", "nowhere": "", "tie": "GDPR", "stranger": ""}
	for subj, j := range want {
		if got := ix.Jurisdiction(subj); got != j {
			t.Errorf("Jurisdiction(%s) = %q, want %q", subj, got, j)
		}
	}
	if got := ix.Stats().Jurisdictions; got["GDPR"] != 3 || got["CCPA"] != 2 || got[""] != 1 {
		t.Errorf("subjects by jurisdiction %v", got)
	}
	// Segregation keeps the states of the purposes intact.
	if ix.State("mover", Segmentation) != Granted || ix.State("tie", Marketing) != Granted {
		t.Errorf("states changed by the jurisdiction bits")
	}

	f, err := NewFilter(DefaultPolicy(), ix, []string{Segmentation})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.RestrictJurisdictions([]string{"CCPA", "LGPD"}); err != nil {
		t.Fatal(err)
	}
	subjects := []string{"eu", "us", "mover", "later", "nowhere", "tie", "stranger"}
	b := &dataset.Batch{Rows: len(subjects), Cols: []dataset.ColumnData{
		{Name: "subject_id", Kind: dataset.KindString, Str: dataset.Strings{Dict: subjects}},
		{Name: "event_time", Kind: dataset.KindTimestamp},
	}}
	for i := range subjects {
		b.Cols[0].Str.Index = append(b.Cols[0].Str.Index, int32(i))
		b.Cols[1].Int = append(b.Cols[1].Int, at(1).UnixMicro())
	}
	keep, err := f.Apply(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKeep := []bool{false, true, true, false, false, false, false}
	if !reflect.DeepEqual(keep, wantKeep) {
		t.Errorf("keep %v, want %v", keep, wantKeep)
	}
	r := f.Report()
	if r.SubjectsDropped["other_jurisdiction"] != 4 || r.SubjectsDropped["no_consent"] != 1 || r.SubjectsKept != 2 || !reflect.DeepEqual(r.Jurisdictions, []string{"CCPA", "LGPD"}) {
		t.Errorf("report %+v", r)
	}
	if err := f.RestrictJurisdictions(nil); err == nil {
		t.Error("restricting to no jurisdiction accepted")
	}
}
