package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
)

// The head anchors the end of a chain: deleting the last record, or the
// head, or editing the record the head names, is detected; a head that lags
// (a writer crashed between its record and the head) is not an error.
func TestChainHead(t *testing.T) {
	ctx := context.Background()
	fresh := func() dataset.Chain {
		c := dataset.Chain{Store: dataset.NewMemStore("m"), Prefix: "log"}
		for i := range 3 {
			_, err := c.Append(ctx, func(_ []dataset.ChainEntry, seq int, prev string) ([]byte, error) {
				return fmt.Appendf(nil, `{"seq":%d,"prev_sha256":%q,"n":%d}`, seq, prev, i), nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	c := fresh()
	if recs, err := c.Read(ctx); err != nil || len(recs) != 3 {
		t.Fatalf("clean chain: %d records, %v", len(recs), err)
	}
	c.Store.Delete(ctx, "log/0000000003.json")
	if _, err := c.Read(ctx); !errors.Is(err, dataset.ErrChainBroken) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("last record deleted: %v", err)
	}
	c = fresh()
	c.Store.Delete(ctx, "log/_head.json")
	if _, err := c.Read(ctx); !errors.Is(err, dataset.ErrChainBroken) || !strings.Contains(err.Error(), "head is missing") {
		t.Errorf("head deleted: %v", err)
	}
	c = fresh()
	dataset.PutBytes(ctx, c.Store, "log/0000000003.json", []byte(`{"seq":3,"prev_sha256":"x","n":9}`))
	if _, err := c.Read(ctx); !errors.Is(err, dataset.ErrChainBroken) {
		t.Errorf("last record edited: %v", err)
	}
	// A lagging head: record 4 written, head still at 3.
	c = fresh()
	recs, _ := c.Read(ctx)
	c.Store.PutIfAbsent(ctx, "log/0000000004.json", strings.NewReader(fmt.Sprintf(`{"seq":4,"prev_sha256":%q}`, recs[2].SHA)))
	if recs, err := c.Read(ctx); err != nil || len(recs) != 4 {
		t.Errorf("lagging head: %d records, %v", len(recs), err)
	}
}
