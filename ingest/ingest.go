// Package ingest reads raw exports that still hold direct identifiers (the
// input of veil pseudonymize) and maps them to the events contract: the UCI
// Online Retail CSV, and a generic CSV with the events columns.
package ingest

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// ErrFormat is returned for input that does not have the expected shape.
var ErrFormat = errors.New("unexpected input format")

// Row is one event with the raw identifier of its subject, not yet
// pseudonymized. The Event's SubjectID is empty.
type Row struct {
	RawID string
	Event dataset.Event
}

// Stats counts the input rows and why some were dropped.
type Stats struct {
	Rows    int64            `json:"rows"`
	Events  int64            `json:"events"`
	Dropped map[string]int64 `json:"dropped"`
	// NoRegion counts events whose country has no ISO 3166 code.
	NoRegion int64 `json:"no_region"`
	// NoCategory counts events whose description matched no category.
	NoCategory int64 `json:"no_category"`
}

func (s *Stats) drop(reason string) {
	if s.Dropped == nil {
		s.Dropped = map[string]int64{}
	}
	s.Dropped[reason]++
}

// Open returns a reader of r that transparently gunzips gzip input.
func Open(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// Format names an input format.
type Format string

const (
	OnlineRetail Format = "online-retail"
	EventsCSV    Format = "csv"
)

// onlineRetailHeader is the header of the UCI Online Retail CSV.
var onlineRetailHeader = []string{"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"}

// Detect returns the format of a CSV header.
func Detect(header []string) Format {
	if slices.Equal(header, onlineRetailHeader) {
		return OnlineRetail
	}
	return EventsCSV
}

// Read returns the rows of a CSV export (gzip or plain) of the given format
// (empty: detect from the header). idColumn names the raw identifier
// column (CustomerID for Online Retail). Errors name the line.
func Read(r io.Reader, format Format, idColumn string, st *Stats) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		in, err := Open(r)
		if err != nil {
			yield(Row{}, fmt.Errorf("%w: %w", ErrFormat, err))
			return
		}
		cr := csv.NewReader(in)
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			yield(Row{}, fmt.Errorf("%w: reading the header: %v", ErrFormat, err))
			return
		}
		header = slices.Clone(header)
		if len(header) > 0 {
			header[0] = strings.TrimPrefix(header[0], "\ufeff")
		}
		if format == "" {
			format = Detect(header)
		}
		col := map[string]int{}
		for i, h := range header {
			col[h] = i
		}
		idx, ok := col[idColumn]
		if !ok {
			yield(Row{}, fmt.Errorf("%w: no id column %q in the header %q", ErrFormat, idColumn, header))
			return
		}
		var mapRow func(rec []string) (Row, string, error)
		switch format {
		case OnlineRetail:
			if !slices.Equal(header, onlineRetailHeader) {
				yield(Row{}, fmt.Errorf("%w: header %q is not the Online Retail header %q", ErrFormat, header, onlineRetailHeader))
				return
			}
			mapRow = func(rec []string) (Row, string, error) { return onlineRetailRow(rec, idx, st) }
		case EventsCSV:
			m, err := newEventsCSV(col, idx, st)
			if err != nil {
				yield(Row{}, err)
				return
			}
			mapRow = m
		default:
			yield(Row{}, fmt.Errorf("%w: unknown format %q", ErrFormat, format))
			return
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				// A *csv.ParseError names its own line and column; FieldPos
				// is only defined after a successful Read.
				yield(Row{}, fmt.Errorf("%w: %w", ErrFormat, err))
				return
			}
			line, _ := cr.FieldPos(0)
			st.Rows++
			row, drop, err := mapRow(rec)
			if err != nil {
				yield(Row{}, fmt.Errorf("%w: line %d: %v", ErrFormat, line, err))
				return
			}
			if drop != "" {
				st.drop(drop)
				continue
			}
			st.Events++
			if !yield(row, nil) {
				return
			}
		}
	}
}

// normalizeID turns "17850.0" and "17850" into the same identifier.
func normalizeID(s string) string {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return s
}

func missing(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || s == "NA" || s == "NaN" || s == "null"
}

// feeCodes are Online Retail stock codes that are not products: postage,
// fees, discounts, manual adjustments and gift vouchers.
var feeCodes = map[string]bool{
	"POST": true, "DOT": true, "M": true, "m": true, "C2": true, "D": true, "S": true, "B": true,
	"BANK CHARGES": true, "AMAZONFEE": true, "CRUK": true, "PADS": true,
}

func onlineRetailRow(rec []string, idIdx int, st *Stats) (Row, string, error) {
	if missing(rec[idIdx]) {
		return Row{}, "no_customer_id", nil
	}
	code := strings.TrimSpace(rec[1])
	if feeCodes[code] || strings.HasPrefix(code, "gift_") {
		return Row{}, "not_a_product", nil
	}
	qty, err := strconv.ParseInt(strings.TrimSpace(rec[3]), 10, 64)
	if err != nil {
		return Row{}, "", fmt.Errorf("Quantity %q is not an integer", rec[3])
	}
	price, err := strconv.ParseFloat(strings.TrimSpace(rec[5]), 64)
	if err != nil || math.IsNaN(price) || math.IsInf(price, 0) {
		return Row{}, "", fmt.Errorf("UnitPrice %q is not a number", rec[5])
	}
	if qty == 0 || price < 0 {
		return Row{}, "adjustment", nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[4]))
	if err != nil {
		if t, err = time.Parse("2006-01-02 15:04:05", strings.TrimSpace(rec[4])); err != nil {
			return Row{}, "", fmt.Errorf("InvoiceDate %q is not a timestamp", rec[4])
		}
	}
	typ := "purchase"
	if strings.HasPrefix(rec[0], "C") || qty < 0 {
		typ = "return"
	}
	value := math.Round(float64(qty)*price*100) / 100
	e := dataset.Event{EventTime: t.UTC(), EventType: typ, ItemID: code, Quantity: &qty, Value: &value}
	if c, ok := Countries[strings.TrimSpace(rec[7])]; ok && c != "" {
		e.Region = &c
	} else {
		st.NoRegion++
	}
	if c := Category(rec[2]); c != "" {
		e.Category = &c
	} else {
		st.NoCategory++
	}
	return Row{RawID: normalizeID(rec[idIdx]), Event: e}, "", nil
}

// newEventsCSV maps a CSV with the events columns (event_time, event_type,
// item_id required; category, quantity, value, region optional).
func newEventsCSV(col map[string]int, idIdx int, st *Stats) (func([]string) (Row, string, error), error) {
	for _, c := range []string{"event_time", "event_type", "item_id"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%w: no %q column (an events CSV needs event_time, event_type, item_id)", ErrFormat, c)
		}
	}
	opt := func(rec []string, name string) (string, bool) {
		i, ok := col[name]
		if !ok || missing(rec[i]) {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	return func(rec []string) (Row, string, error) {
		if missing(rec[idIdx]) {
			return Row{}, "no_id", nil
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[col["event_time"]]))
		if err != nil {
			return Row{}, "", fmt.Errorf("event_time %q is not an RFC 3339 timestamp", rec[col["event_time"]])
		}
		e := dataset.Event{EventTime: t.UTC(), EventType: strings.TrimSpace(rec[col["event_type"]]), ItemID: strings.TrimSpace(rec[col["item_id"]])}
		if e.EventType == "" || e.ItemID == "" {
			return Row{}, "", errors.New("event_type and item_id must not be empty")
		}
		if v, ok := opt(rec, "category"); ok {
			e.Category = &v
		}
		if v, ok := opt(rec, "region"); ok {
			e.Region = &v
		}
		if v, ok := opt(rec, "quantity"); ok {
			q, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Row{}, "", fmt.Errorf("quantity %q is not an integer", v)
			}
			e.Quantity = &q
		}
		if v, ok := opt(rec, "value"); ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return Row{}, "", fmt.Errorf("value %q is not a finite number", v)
			}
			e.Value = &x
		}
		return Row{RawID: normalizeID(rec[idIdx]), Event: e}, "", nil
	}, nil
}
