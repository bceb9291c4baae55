package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

// PseudonymizeStep turns a raw export with direct identifiers into the
// events contract (veil pseudonymize). The output is the table itself, not
// a run directory: steps after it read it at Out, and a rerun replaces it
// atomically.
type PseudonymizeStep struct {
	In       string `yaml:"in"`        // raw CSV file or object (plain or gzip)
	Out      string `yaml:"out"`       // URL of the events table
	IDColumn string `yaml:"id_column"` // column with the direct identifier
	Format   string `yaml:"format"`    // auto (default), online-retail or csv
	KeyFile  string `yaml:"key_file"`  // pseudonymization key file, or
	KeyEnv   string `yaml:"key_env"`   // the environment variable holding it
}

// Validate checks the step's own settings.
func (p *PseudonymizeStep) Validate() error {
	switch {
	case p.In == "" || p.Out == "" || p.IDColumn == "":
		return errors.New("in, out and id_column are required")
	case (p.KeyFile == "") == (p.KeyEnv == ""):
		return errors.New("exactly one of key_file and key_env is required")
	}
	switch p.Format {
	case "", "auto", "online-retail", "csv":
	default:
		return fmt.Errorf("format %q: want auto, online-retail or csv", p.Format)
	}
	return nil
}

// pseudonymizeWork is a pseudonymize step. It reads no consented events
// and runs under no purpose and no policy: it comes before them. As the kind of a
// result (StepResult.kind) p is nil.
type pseudonymizeWork struct{ p *PseudonymizeStep }

func (w pseudonymizeWork) validate() error {
	if err := w.p.Validate(); err != nil {
		return fmt.Errorf("pseudonymize: %v", err)
	}
	return nil
}

func (w pseudonymizeWork) doc() string {
	return "Pseudonymize a raw export: direct identifiers become HMAC-SHA-256 tokens; rows are mapped to the events contract."
}

func (w pseudonymizeWork) purposes() []string         { return nil }
func (w pseudonymizeWork) tables() *privacy.JobTables { return nil }
func (w pseudonymizeWork) input() lineage.Dataset     { return tableDataset(w.p.In, nil) }
func (w pseudonymizeWork) table() string              { return w.p.Out }
func (w pseudonymizeWork) jurisdictions() []string    { return nil }
func (w pseudonymizeWork) policy() (string, bool)     { return "", false }
func (w pseudonymizeWork) budget() *budget.Config     { return nil }
func (w pseudonymizeWork) nonPrivate() string         { return "" }

func (w pseudonymizeWork) urls(fn func(*string)) {
	fn(&w.p.In)
	fn(&w.p.Out)
}

func (w pseudonymizeWork) zoneOutputs() []string { return []string{w.p.In, w.p.Out} }

func (w pseudonymizeWork) inZone(st *StepSpec, _ *Zone) {
	p := *w.p
	st.Pseudonymize = &p
}

func (w pseudonymizeWork) accesses(step, _ string, add func(Access)) {
	add(Access{URL: w.p.In, What: step + " raw export"})
	add(Access{URL: w.p.Out, Write: true, What: step + " events table"})
}

func (w pseudonymizeWork) releases(context.Context, dataset.URLOptions) ([]accountant.Event, string, int, error) {
	return nil, "", 0, nil
}

func (w pseudonymizeWork) plan() StepPlan {
	return StepPlan{Reads: []string{w.p.In + " (raw, with direct identifiers)"},
		Purposes: []string{"none: pseudonymization, before any purpose"}, Writes: w.p.Out + " (replaced atomically)"}
}

func (w pseudonymizeWork) run(ctx context.Context, rs runStepEnv) (*StepResult, error) {
	p, opt := w.p, rs.opt
	var key *pseudonym.Key
	var err error
	if p.KeyFile != "" {
		key, err = pseudonym.LoadKeyFile(p.KeyFile)
	} else {
		key, err = pseudonym.LoadKeyEnv(p.KeyEnv, opt.Getenv)
	}
	if err != nil {
		return nil, err
	}
	ref, err := open.Ref(ctx, p.In, opt.URL)
	if err != nil {
		return nil, err
	}
	if ref.Key == "" {
		return nil, fmt.Errorf("%w: pseudonymize input %s names a directory or bucket, not a file", ErrSpec, p.In)
	}
	obj, err := ref.Store.Open(ctx, ref.Key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	out, err := open.Ref(ctx, p.Out, opt.URL)
	if err != nil {
		return nil, err
	}
	format := ingest.Format(p.Format)
	if p.Format == "auto" {
		format = ""
	}
	// The shop's product list (public) beside the events: read before
	// them, so that bad input leaves nothing, written after them.
	catalog, err := ingest.Catalog(io.NewSectionReader(obj, 0, obj.Size()), format)
	if err != nil {
		return nil, fmt.Errorf("reading the product catalog of %s: %w", p.In, err)
	}
	sum, err := ingest.Pseudonymize(ctx, io.NewSectionReader(obj, 0, obj.Size()), p.In, format, p.IDColumn, key, out, "veil "+opt.version())
	if err != nil {
		return nil, err
	}
	if catalog != nil {
		catRef, err := open.Ref(ctx, dataset.SiblingURL(p.Out, "catalog"), opt.URL)
		if err != nil {
			return nil, err
		}
		if sum.Catalog, err = ingest.WriteCatalog(ctx, catalog, catRef, "veil "+opt.version(), map[string]string{"source_format": string(ingest.OnlineRetail)}); err != nil {
			return nil, fmt.Errorf("writing the product catalog: %w", err)
		}
	}
	return &StepResult{Output: sum.Out, Pseudonymize: sum}, nil
}

func (w pseudonymizeWork) record(ctx context.Context, r *recorder, ev *lineage.Event, a *lineage.AuditRecord, sr *StepResult) {
	a.Reads, a.Writes = []string{w.p.In}, []string{w.p.Out}
	if sr == nil {
		return
	}
	sum := sr.Pseudonymize
	in := tableDataset(w.p.In, nil)
	in.InputFacets = map[string]lineage.Facet{"dataQualityMetrics": lineage.DataQualityMetrics(sum.Rows)}
	ev.Inputs, ev.Outputs = []lineage.Dataset{in}, []lineage.Dataset{r.outputDataset(ctx, sum.Out, dataset.EventsContract, false)}
	a.RowsRead, a.RowsKept = sum.Rows, sum.Events
}

// observe exports a pseudonymize step's counts: rows read and dropped by
// reason (it makes no DP release; its input is the raw export).
func (pseudonymizeWork) observe(m *Metrics, r StepResult) {
	p := r.Pseudonymize
	m.rowsRead.WithLabelValues(m.job, r.Step).Set(float64(p.Rows))
	for reason, n := range p.Dropped {
		m.dropped.WithLabelValues(m.job, r.Step, reason).Set(float64(n))
	}
}

func (pseudonymizeWork) public(*StepResult) {}
