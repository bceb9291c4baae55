package ingest

import (
	"fmt"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// piiGuard runs the PII guard (privacy.DetectPII, as veil datasets scan-pii
// does) on every value of every string column Pseudonymize writes: the
// identifier column becomes a token, but an e-mail address typed into a
// category or an item id would otherwise enter the events table as it is.
// Unlike the scan of a Parquet input, which samples large files, it sees
// every row, since it is on the write path anyway. Values found clean are
// remembered (up to maxClean), so repeated categories and items cost one
// map lookup.
type piiGuard struct {
	clean map[string]struct{}
}

const maxClean = 1 << 16

func newPIIGuard() *piiGuard { return &piiGuard{clean: map[string]struct{}{}} }

// check returns an error wrapping privacy.ErrPII naming the input, the
// column, the row and a redacted example when ev holds an identifier.
func (g *piiGuard) check(name string, row int64, ev *dataset.Event) error {
	cols := [...]struct {
		name string
		v    *string
	}{{"event_type", &ev.EventType}, {"item_id", &ev.ItemID}, {"category", ev.Category}, {"region", ev.Region}}
	for _, c := range cols {
		if c.v == nil || *c.v == "" {
			continue
		}
		v := *c.v
		if _, ok := g.clean[v]; ok {
			continue
		}
		if kind, m, found := privacy.DetectPII(v); found {
			return fmt.Errorf("%s: column %q: %w: %s such as %s in input row %d; nothing was written (remove it from the export, or map the column away)",
				name, c.name, privacy.ErrPII, kind, privacy.Redact(kind, m), row)
		}
		if len(g.clean) < maxClean {
			g.clean[v] = struct{}{}
		}
	}
	return nil
}
