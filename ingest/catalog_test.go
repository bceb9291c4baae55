package ingest

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestOnlineRetailCatalogSample(t *testing.T) {
	data, err := os.ReadFile("testdata/online_retail_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	items, err := Catalog(bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, it := range items {
		if _, dup := byID[it.ItemID]; dup {
			t.Fatalf("item %s twice", it.ItemID)
		}
		byID[it.ItemID] = i
	}
	// Every item of the events is in the catalog, with the events' id.
	var st Stats
	for r, err := range Read(bytes.NewReader(data), "", "CustomerID", &st) {
		if err != nil {
			t.Fatal(err)
		}
		i, ok := byID[r.Event.ItemID]
		if !ok {
			t.Errorf("event item %s is not in the catalog", r.Event.ItemID)
			continue
		}
		if c := r.Event.Category; c != nil && *c != items[i].Category {
			t.Errorf("item %s: catalog category %q, events %q", r.Event.ItemID, items[i].Category, *c)
		}
	}
	for _, code := range []string{"POST", "D"} {
		if _, ok := byID[code]; ok {
			t.Errorf("%s is a fee, not a product, but is in the catalog", code)
		}
	}
	// Rows without a customer id list products too.
	it := items[byID["21786"]]
	if it.Name == nil || *it.Name != "POLKADOT RAIN HAT" || it.Price == nil || *it.Price != 0.85 {
		t.Errorf("21786 (sold without a customer id): %+v", it)
	}
	// A product seen only at price 0 with description NA has no name or price.
	if it := items[byID["22139"]]; it.Name != nil || it.Price != nil || it.Category != "" {
		t.Errorf("22139: want no name, price or category, got %+v", it)
	}
	it = items[byID["85123A"]]
	want := time.Date(2010, 12, 1, 8, 26, 0, 0, time.UTC)
	if it.Category != "home/lighting" || it.FirstListed == nil || !it.FirstListed.Equal(want) {
		t.Errorf("85123A: %+v", it)
	}
}

func TestOnlineRetailCatalogAggregates(t *testing.T) {
	csv := strings.Join([]string{
		strings.Join(onlineRetailHeader, ","),
		"1,A1,RED MUG,1,2011-01-03 10:00:00,2.00,1,France",
		"2,A1,red mug (damaged),1,2011-01-01 09:00:00,1.00,,France",
		"3,A1,RED MUG,2,2011-01-05 10:00:00,3.00,2,France",
		"C4,A1,RED MUG,-1,2011-01-06 10:00:00,10.00,2,France",
		"5,A1,RED MUG,0,2010-12-01 10:00:00,2.00,2,France",    // adjustment: not a sale
		"6,A1,lost,-5,2010-12-02 10:00:00,-1,,United Kingdom", // adjustment
		"7,B2,GARDEN TRUG,1,2011-02-01 10:00:00,5.00,3,Germany",
		"8,B2,FLOWER TRUG,1,2011-02-02 10:00:00,5.00,3,Germany",
	}, "\n")
	items, err := OnlineRetailCatalog(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].ItemID != "A1" || items[1].ItemID != "B2" {
		t.Fatalf("items %+v", items)
	}
	a := items[0]
	// Median of the positive prices 2, 1, 3, 10; first sale 2011-01-01.
	if *a.Name != "RED MUG" || a.Category != "kitchen" || *a.Price != 2.5 || !a.FirstListed.Equal(time.Date(2011, 1, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("A1: name %q category %q price %v first %v", *a.Name, a.Category, *a.Price, a.FirstListed)
	}
	// A tie between names goes to the first in byte order.
	if b := items[1]; *b.Name != "FLOWER TRUG" || b.Category != "garden" {
		t.Errorf("B2: name %q category %q", *b.Name, b.Category)
	}
	if _, err := OnlineRetailCatalog(strings.NewReader("event_time,event_type,item_id,id\n")); !errors.Is(err, ErrFormat) {
		t.Errorf("an events CSV: %v, want ErrFormat", err)
	}
	if items, err := Catalog(strings.NewReader("event_time,event_type,item_id,id\n"), ""); err != nil || items != nil {
		t.Errorf("an events CSV, detected: %v %v, want no catalog", items, err)
	}
}
