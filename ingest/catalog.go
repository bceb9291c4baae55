package ingest

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// CatalogSummary is what WriteCatalog wrote.
type CatalogSummary struct {
	Out   string `json:"out"`
	Items int    `json:"items"`
	// Uncategorized counts items whose name maps to no category: their
	// catalog category is empty, as their events have none.
	Uncategorized int `json:"uncategorized"`
}

// catalogEntry gathers what the rows of one stock code say about it.
type catalogEntry struct {
	names   map[string]int // description -> rows with a positive price
	anyName string         // a description, when no row has a positive price
	prices  []float64      // positive unit prices
	first   time.Time
}

// OnlineRetailCatalog reads an Online Retail export (gzip or plain) and
// returns the shop's product list: one item per product stock code (fees,
// postage and vouchers are not products), in order of first appearance.
// The item id is the StockCode, as in the events; the name is the code's
// most frequent Description among rows with a positive UnitPrice (ties:
// the first in byte order); the category is that name's category under the
// events' mapping (empty when it maps to none); the price is the median
// positive UnitPrice; first_listed is the code's first InvoiceDate.
//
// Every row of a product counts, with or without a CustomerID: the list
// describes the shop's products, not its customers. The data set publishes
// no product list of its own, so this is the closest stand-in for one; a
// shop with a product list of its own should use that instead.
func OnlineRetailCatalog(r io.Reader) ([]dataset.CatalogItem, error) {
	return onlineRetailCatalog(r, false)
}

// Catalog returns the product catalog of a raw export of the given format
// (empty: detect from the header), or nil for a format that lists no
// products (an events CSV).
func Catalog(r io.Reader, format Format) ([]dataset.CatalogItem, error) {
	switch format {
	case OnlineRetail:
		return onlineRetailCatalog(r, false)
	case "":
		return onlineRetailCatalog(r, true)
	}
	return nil, nil
}

// onlineRetailCatalog reads an Online Retail catalog; with detect, input
// of another format gives no catalog instead of an error.
func onlineRetailCatalog(r io.Reader, detect bool) ([]dataset.CatalogItem, error) {
	in, err := Open(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the header: %v", ErrFormat, err)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	if !slices.Equal(header, onlineRetailHeader) {
		if detect {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: header %q is not the Online Retail header %q", ErrFormat, header, onlineRetailHeader)
	}
	entries := map[string]*catalogEntry{}
	var order []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		line, _ := cr.FieldPos(0)
		code := strings.TrimSpace(rec[1])
		if code == "" || feeCodes[code] || strings.HasPrefix(code, "gift_") {
			continue
		}
		qty, err := strconv.ParseInt(strings.TrimSpace(rec[3]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: Quantity %q is not an integer", ErrFormat, line, rec[3])
		}
		price, err := strconv.ParseFloat(strings.TrimSpace(rec[5]), 64)
		if err != nil || math.IsNaN(price) || math.IsInf(price, 0) {
			return nil, fmt.Errorf("%w: line %d: UnitPrice %q is not a number", ErrFormat, line, rec[5])
		}
		// The rows the events mapping would drop as adjustments are stock
		// corrections, not sales: they list nothing.
		if qty == 0 || price < 0 {
			continue
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[4]))
		if err != nil {
			if t, err = time.Parse("2006-01-02 15:04:05", strings.TrimSpace(rec[4])); err != nil {
				return nil, fmt.Errorf("%w: line %d: InvoiceDate %q is not a timestamp", ErrFormat, line, rec[4])
			}
		}
		t = t.UTC()
		e, ok := entries[code]
		if !ok {
			e = &catalogEntry{names: map[string]int{}, first: t}
			entries[code] = e
			order = append(order, code)
		}
		if t.Before(e.first) {
			e.first = t
		}
		name := strings.TrimSpace(rec[2])
		if missing(name) {
			name = ""
		}
		if price > 0 {
			e.prices = append(e.prices, price)
			if name != "" {
				e.names[name]++
			}
		} else if e.anyName == "" {
			e.anyName = name
		}
	}
	items := make([]dataset.CatalogItem, 0, len(order))
	for _, code := range order {
		e := entries[code]
		it := dataset.CatalogItem{ItemID: code}
		name := e.anyName
		best := 0
		for n, c := range e.names {
			if c > best || c == best && n < name {
				name, best = n, c
			}
		}
		if name != "" {
			it.Name = &name
			it.Category = Category(name)
		}
		if len(e.prices) > 0 {
			p := median(e.prices)
			it.Price = &p
		}
		first := e.first
		it.FirstListed = &first
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no products in the Online Retail export", ErrFormat)
	}
	return items, nil
}

// median returns the median of xs (sorted in place).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// WriteCatalog writes a product catalog (the catalog contract) under out,
// committed with a manifest as a veil output.
func WriteCatalog(ctx context.Context, items []dataset.CatalogItem, out dataset.Ref, producer string, meta map[string]string) (*CatalogSummary, error) {
	o, err := dataset.NewOutput(ctx, out.Store, out.Key, dataset.CatalogContract, producer)
	if err != nil {
		return nil, err
	}
	w, err := dataset.CreateParquet[dataset.CatalogItem](ctx, o, "part-00000.parquet")
	if err != nil {
		o.Abort(ctx)
		return nil, err
	}
	if err := w.Write(items); err != nil {
		w.Abort()
		o.Abort(ctx)
		return nil, fmt.Errorf("writing the catalog: %w", err)
	}
	if err := w.Close(); err != nil {
		o.Abort(ctx)
		return nil, fmt.Errorf("writing the catalog: %w", err)
	}
	if _, err := o.Commit(ctx, meta); err != nil {
		o.Abort(ctx)
		return nil, err
	}
	sum := &CatalogSummary{Out: o.Location(), Items: len(items)}
	for _, it := range items {
		if it.Category == "" {
			sum.Uncategorized++
		}
	}
	return sum, nil
}
