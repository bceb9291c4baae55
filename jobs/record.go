package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/train"
)

// recorder emits the lineage events and audit records of a run: START and
// COMPLETE, FAIL or ABORT for the pipeline run, and for each step a child
// run with a parent facet, inputs and outputs.
type recorder struct {
	spec  *Spec
	opt   Options
	runID string
	emit  *lineage.Emitter
	audit *lineage.AuditLog
	who   string
}

func newRecorder(ctx context.Context, spec *Spec, opt Options, runID string) (*recorder, error) {
	r := &recorder{spec: spec, opt: opt, runID: runID, who: lineage.Principal(opt.Getenv), emit: &lineage.Emitter{Log: opt.Log}}
	url := spec.Lineage.Store
	if url == "" {
		url = spec.State + "/lineage"
	}
	store, err := dataset.OpenStore(ctx, url, opt.URL)
	if err != nil {
		return nil, err
	}
	r.emit.Transports = append(r.emit.Transports, &lineage.StoreTransport{Store: store})
	if h := spec.Lineage.HTTP; h != "" {
		spoolURL := spec.Lineage.Spool
		if spoolURL == "" {
			spoolURL = spec.State + "/lineage-spool"
		}
		spool, err := dataset.OpenStore(ctx, spoolURL, opt.URL)
		if err != nil {
			return nil, err
		}
		key := ""
		if spec.Lineage.APIKey != "" {
			key = opt.Getenv(spec.Lineage.APIKey)
		}
		r.emit.Transports = append(r.emit.Transports, &lineage.HTTPTransport{URL: h, APIKey: key, Spool: spool})
	}
	if spec.Lineage.Console && opt.Console != nil {
		r.emit.Transports = append(r.emit.Transports, lineage.ConsoleTransport{W: opt.Console})
	}
	auditURL := spec.Audit
	if auditURL == "" {
		auditURL = spec.State + "/audit"
	}
	as, err := dataset.OpenStore(ctx, auditURL, opt.URL)
	if err != nil {
		return nil, err
	}
	r.audit = lineage.OpenAudit(as, "")
	return r, nil
}

func (r *recorder) now() time.Time { return r.opt.Now().UTC() }

func (r *recorder) start(ctx context.Context) {
	ev := lineage.NewEvent("START", r.now(), r.runID, r.spec.Name)
	ev.Run.Facets["nominalTime"] = lineage.NominalTime(r.opt.LogicalDate)
	ev.Run.Facets["processing_engine"] = lineage.ProcessingEngine(r.version())
	ev.Job.Facets["jobType"] = lineage.JobType("PIPELINE")
	r.emit.Emit(ctx, ev)
	r.auditAppend(ctx, lineage.AuditRecord{Action: "run", Job: r.spec.Name, RunID: r.runID, Outcome: "started"})
}

func (r *recorder) version() string { return r.opt.version() }

func (o Options) version() string {
	if o.Version != "" {
		return o.Version
	}
	return "dev"
}

func (r *recorder) auditAppend(ctx context.Context, a lineage.AuditRecord) {
	a.Principal = r.who
	a.LogicalDate = r.opt.LogicalDate.UTC().Format(time.DateOnly)
	if err := r.audit.Append(context.WithoutCancel(ctx), a); err != nil {
		r.opt.Log.Error("audit record not written", "error", err.Error())
	}
}

func (r *recorder) stepJob(st StepSpec) string { return r.spec.Name + "." + st.Name }

func (r *recorder) stepStart(ctx context.Context, st StepSpec, id string) {
	ev := lineage.NewEvent("START", r.now(), id, r.stepJob(st))
	ev.Run.Facets["parent"] = lineage.Parent(r.runID, r.spec.Name)
	ev.Run.Facets["nominalTime"] = lineage.NominalTime(r.opt.LogicalDate)
	ev.Job.Facets["jobType"] = lineage.JobType("JOB")
	if c := st.Segment; c != nil {
		ev.Inputs = []lineage.Dataset{lineage.DatasetFromURL(c.Events)}
	}
	if p := st.Pseudonymize; p != nil {
		ev.Inputs = []lineage.Dataset{lineage.DatasetFromURL(p.In)}
	}
	if c := st.Train; c != nil {
		ev.Inputs = []lineage.Dataset{lineage.DatasetFromURL(c.Events)}
	}
	r.emit.Emit(ctx, ev)
}

// outputDataset names an output with its statistics from its manifest.
func (r *recorder) outputDataset(ctx context.Context, url string) lineage.Dataset {
	out := lineage.DatasetFromURL(url)
	if ref, err := dataset.ParseRef(ctx, url, r.opt.URL); err == nil {
		if m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key); err == nil {
			out.OutputFacets = map[string]lineage.Facet{"outputStatistics": lineage.OutputStatistics(m.Rows, m.Bytes, len(m.Files))}
		}
	}
	return out
}

func (r *recorder) stepEnd(ctx context.Context, st StepSpec, id string, sr *StepResult, err error) {
	kind := endType(err)
	ev := lineage.NewEvent(kind, r.now(), id, r.stepJob(st))
	ev.Run.Facets["parent"] = lineage.Parent(r.runID, r.spec.Name)
	ev.Job.Facets["jobType"] = lineage.JobType("JOB")
	a := lineage.AuditRecord{Action: "step", Job: r.stepJob(st), RunID: id, Outcome: outcome(kind)}
	if c := st.Segment; c != nil {
		a.Reads = []string{c.Events}
		a.Purposes = []string{"segmentation", "marketing"}
	}
	if p := st.Pseudonymize; p != nil {
		a.Reads, a.Writes = []string{p.In}, []string{p.Out}
	}
	if c := st.Train; c != nil {
		a.Reads, a.Purposes = []string{c.Events}, train.Purposes
	}
	if err != nil {
		ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error())
		a.Error = err.Error()
	}
	if sr != nil && sr.Pseudonymize != nil {
		sum := sr.Pseudonymize
		in := lineage.DatasetFromURL(st.Pseudonymize.In)
		in.InputFacets = map[string]lineage.Facet{"dataQualityMetrics": lineage.DataQualityMetrics(sum.Rows)}
		ev.Inputs, ev.Outputs = []lineage.Dataset{in}, []lineage.Dataset{r.outputDataset(ctx, sum.Out)}
		a.RowsRead, a.RowsKept = sum.Rows, sum.Events
	}
	if sr != nil && sr.Segment != nil {
		rep := sr.Segment
		in := lineage.DatasetFromURL(st.Segment.Events)
		in.InputFacets = map[string]lineage.Facet{"dataQualityMetrics": lineage.DataQualityMetrics(rep.Filter.RowsRead)}
		out := r.outputDataset(ctx, rep.Output)
		ev.Inputs, ev.Outputs = []lineage.Dataset{in}, []lineage.Dataset{out}
		p := lineage.Privacy{Purposes: rep.Filter.Purposes, LogicalDate: rep.LogicalDate, RowsRead: rep.Filter.RowsRead, RowsKept: rep.Filter.RowsKept,
			RowsDropped: rep.Filter.RowsDropped, SubjectsKept: rep.Filter.SubjectsKept, ConsentRecords: rep.Filter.Consent.Records, CohortFloor: st.Segment.Floor.MinSize}
		if rep.Spent != nil {
			p.Epsilon, p.Delta, p.Accountant = rep.Spent.Epsilon, rep.Spent.Delta, rep.Spent.Accountant
		}
		ev.Run.Facets["veil_privacy"] = p.Facet()
		if c := rep.Contributors; c != nil {
			ev.Run.Facets["veil_contributors"] = lineage.Contributors{Filter: c.File, Subjects: c.Subjects, FPR: c.FPR, Bits: c.Bits, Hashes: c.Hashes}.Facet()
		}
		a.Writes = []string{rep.Output}
		a.RowsRead, a.RowsKept = rep.Filter.RowsRead, rep.Filter.RowsKept
	}
	if sr != nil && sr.Train != nil {
		rep := sr.Train
		in := lineage.DatasetFromURL(st.Train.Events)
		in.InputFacets = map[string]lineage.Facet{"dataQualityMetrics": lineage.DataQualityMetrics(rep.Filter.RowsRead)}
		ev.Inputs, ev.Outputs = []lineage.Dataset{in}, []lineage.Dataset{r.outputDataset(ctx, rep.Output)}
		p := lineage.Privacy{Purposes: rep.Filter.Purposes, LogicalDate: rep.LogicalDate, RowsRead: rep.Filter.RowsRead, RowsKept: rep.Filter.RowsKept,
			RowsDropped: rep.Filter.RowsDropped, SubjectsKept: rep.Filter.SubjectsKept, ConsentRecords: rep.Filter.Consent.Records}
		if g := rep.Guarantee; g != nil {
			p.Epsilon, p.Delta, p.Accountant = g.Epsilon, g.Delta, g.Accountant
			p.DPSGD = &lineage.DPSGD{Unit: g.Unit, NoiseMultiplier: g.NoiseMultiplier, SamplingRate: g.SamplingRate, Steps: g.Steps, ClipNorm: g.Clip, MaxInteractions: g.MaxInteractions}
		}
		ev.Run.Facets["veil_privacy"] = p.Facet()
		if c := rep.Contributors; c != nil {
			ev.Run.Facets["veil_contributors"] = c.Facet()
		}
		a.Writes = []string{rep.Output}
		a.RowsRead, a.RowsKept = rep.Filter.RowsRead, rep.Filter.RowsKept
	}
	r.emit.Emit(ctx, ev)
	r.auditAppend(ctx, a)
}

func (r *recorder) finish(ctx context.Context, res *Result, err error) {
	kind := endType(err)
	ev := lineage.NewEvent(kind, r.now(), r.runID, r.spec.Name)
	ev.Run.Facets["nominalTime"] = lineage.NominalTime(r.opt.LogicalDate)
	ev.Run.Facets["processing_engine"] = lineage.ProcessingEngine(r.version())
	ev.Job.Facets["jobType"] = lineage.JobType("PIPELINE")
	a := lineage.AuditRecord{Action: "run", Job: r.spec.Name, RunID: r.runID, Outcome: outcome(kind)}
	if err != nil {
		ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error())
		a.Error = err.Error()
	}
	if res != nil {
		for _, s := range res.Steps {
			ev.Outputs = append(ev.Outputs, lineage.DatasetFromURL(s.Output))
			a.Writes = append(a.Writes, s.Output)
		}
	}
	r.emit.Emit(context.WithoutCancel(ctx), ev)
	r.auditAppend(ctx, a)
}

func endType(err error) string {
	switch {
	case err == nil:
		return "COMPLETE"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "ABORT"
	}
	return "FAIL"
}

func outcome(kind string) string {
	return map[string]string{"COMPLETE": "completed", "ABORT": "aborted", "FAIL": "failed"}[kind]
}
