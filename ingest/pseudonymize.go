package ingest

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

// Summary is what Pseudonymize did.
type Summary struct {
	Out      string `json:"out"`
	KeyID    string `json:"key_id"`
	Subjects int    `json:"subjects"`
	Files    int    `json:"files"`
	Stats
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_second"`
	// Catalog is the product catalog written beside the events, when the
	// input format lists products (Online Retail).
	Catalog *CatalogSummary `json:"catalog,omitempty"`
}

// Pseudonymize reads a raw export (name says what it is, for errors) and
// writes the events contract under out in dt=YYYY-MM-DD partitions,
// committed with a manifest: each raw identifier becomes the key's token,
// and raw identifiers are never written. Every other string column passes
// the PII guard, row by row: a finding is an error wrapping privacy.ErrPII
// and nothing is committed. Nothing is visible unless all of it is.
func Pseudonymize(ctx context.Context, in io.Reader, name string, format Format, idColumn string, key *pseudonym.Key, out dataset.Ref, producer string) (*Summary, error) {
	start := time.Now()
	o, err := dataset.NewOutput(ctx, out.Store, out.Key, dataset.EventsContract, producer)
	if err != nil {
		return nil, err
	}
	w := &partitionWriter{ctx: ctx, out: o, files: map[string]int{}}
	fail := func(err error) (*Summary, error) {
		w.abort()
		o.Abort(ctx)
		return nil, fmt.Errorf("pseudonymizing %s: %w", name, err)
	}
	tokens := map[string]string{}
	var st Stats
	guard := newPIIGuard()
	batch := make([]dataset.Event, 0, 4096)
	for row, err := range Read(in, format, idColumn, &st) {
		if err != nil {
			return fail(err)
		}
		if err := guard.check(name, st.Rows, &row.Event); err != nil {
			return fail(err)
		}
		tok, ok := tokens[row.RawID]
		if !ok {
			tok = key.Token(row.RawID)
			tokens[row.RawID] = tok
		}
		row.Event.SubjectID = tok
		day := row.Event.EventTime.Format(time.DateOnly)
		if day != w.day && len(batch) > 0 {
			if err := w.write(batch); err != nil {
				return fail(err)
			}
			batch = batch[:0]
		}
		w.next = day
		batch = append(batch, row.Event)
		if len(batch) == cap(batch) {
			if err := w.write(batch); err != nil {
				return fail(err)
			}
			batch = batch[:0]
		}
	}
	if err := w.write(batch); err != nil {
		return fail(err)
	}
	if err := w.close(); err != nil {
		return fail(err)
	}
	if st.Events == 0 {
		return fail(fmt.Errorf("%w: no events left after mapping (%d rows read)", ErrFormat, st.Rows))
	}
	o.NewPopulation()
	if _, err := o.Commit(ctx, map[string]string{"key_id": key.ID(), "source_format": string(format)}); err != nil {
		o.Abort(ctx)
		return nil, err
	}
	sum := &Summary{Out: o.Location(), KeyID: key.ID(), Subjects: len(tokens), Files: w.nfiles, Stats: st, Seconds: time.Since(start).Seconds()}
	sum.RowsPerSec = float64(st.Rows) / sum.Seconds
	return sum, nil
}

// partitionWriter writes events into dt= partitions, one file at a time;
// input sorted by time makes one file per day.
type partitionWriter struct {
	ctx       context.Context
	out       *dataset.Output
	day, next string
	w         *dataset.ParquetWriter[dataset.Event]
	files     map[string]int
	nfiles    int
}

func (p *partitionWriter) write(rows []dataset.Event) error {
	if len(rows) == 0 {
		return nil
	}
	if p.next != p.day || p.w == nil {
		if err := p.close(); err != nil {
			return err
		}
		n := p.files[p.next]
		p.files[p.next]++
		w, err := dataset.CreateParquet[dataset.Event](p.ctx, p.out, fmt.Sprintf("dt=%s/part-%05d.parquet", p.next, n))
		if err != nil {
			return err
		}
		p.w, p.day = w, p.next
		p.nfiles++
	}
	return p.w.Write(rows)
}

func (p *partitionWriter) close() error {
	if p.w == nil {
		return nil
	}
	err := p.w.Close()
	p.w = nil
	return err
}

func (p *partitionWriter) abort() {
	if p.w != nil {
		p.w.Abort()
		p.w = nil
	}
}
