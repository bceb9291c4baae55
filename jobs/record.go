package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/lineage"
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
	r := &recorder{spec: spec, opt: opt, runID: runID, who: principal(ctx, spec, opt), emit: &lineage.Emitter{Log: opt.Log}}
	url := spec.Lineage.Store
	if url == "" {
		url = dataset.ChildURL(spec.State, "lineage")
	}
	store, err := open.Store(ctx, url, opt.URL)
	if err != nil {
		return nil, err
	}
	r.emit.Transports = append(r.emit.Transports, &lineage.StoreTransport{Store: store})
	if h := spec.Lineage.HTTP; h != "" {
		spoolURL := spec.Lineage.Spool
		if spoolURL == "" {
			spoolURL = dataset.ChildURL(spec.State, "lineage-spool")
		}
		spool, err := open.Store(ctx, spoolURL, opt.URL)
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
		auditURL = dataset.ChildURL(spec.State, "audit")
	}
	as, err := open.Store(ctx, auditURL, opt.URL)
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
	r.jobFacets(&ev, "PIPELINE", r.pipelineDoc())
	r.emit.Emit(ctx, ev)
	r.auditAppend(ctx, lineage.AuditRecord{Action: "run", Job: r.spec.Name, RunID: r.runID, Outcome: "started"})
}

func (r *recorder) version() string { return r.opt.version() }

func (r *recorder) pipelineDoc() string {
	names := make([]string, len(r.spec.Steps))
	for i, st := range r.spec.Steps {
		names[i] = st.Name
	}
	return fmt.Sprintf("veil pipeline %s: steps %s, run once per logical date.", r.spec.Name, strings.Join(names, ", "))
}

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

// jobFacets sets what every event of a job carries: its type, what it does
// and who owns it.
func (r *recorder) jobFacets(ev *lineage.Event, kind, doc string) {
	ev.Job.Facets["jobType"] = lineage.JobType(kind)
	ev.Job.Facets["documentation"] = lineage.Documentation(doc)
	owners := r.spec.Owners
	if len(owners) == 0 {
		owners = []string{"user:" + r.who}
	}
	ev.Job.Facets["ownership"] = lineage.Ownership(owners...)
}

// stepDoc says what a step does, for the documentation facet.
func stepDoc(w work) string {
	if w == nil {
		return ""
	}
	return w.doc()
}

// tableDataset names a table read or written with its data source and,
// when known, its schema.
func tableDataset(url string, c *dataset.Contract) lineage.Dataset {
	d := lineage.DatasetFromURL(url)
	d.Facets = map[string]lineage.Facet{"dataSource": lineage.DataSource(url)}
	if c != nil {
		d.Facets["schema"] = lineage.Schema(c)
	}
	return d
}

func (r *recorder) stepStart(ctx context.Context, st StepSpec, id string) {
	ev := lineage.NewEvent("START", r.now(), id, r.stepJob(st))
	ev.Run.Facets["parent"] = lineage.Parent(r.runID, r.spec.Name)
	ev.Run.Facets["nominalTime"] = lineage.NominalTime(r.opt.LogicalDate)
	w := st.work()
	r.jobFacets(&ev, "JOB", stepDoc(w))
	if w != nil {
		ev.Inputs = []lineage.Dataset{w.input()}
	}
	r.emit.Emit(ctx, ev)
}

// outputDataset names an output with its statistics from its manifest;
// withheld (a DP release) leaves them out: lineage goes to any configured
// endpoint, and the row count and size of a DP output are exact counts
// of the private data (they are in the steward report).
func (r *recorder) outputDataset(ctx context.Context, url string, c *dataset.Contract, withheld bool) lineage.Dataset {
	out := tableDataset(url, c)
	if withheld {
		return out
	}
	if ref, err := open.Ref(ctx, url, r.opt.URL); err == nil {
		if m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key); err == nil {
			out.OutputFacets = map[string]lineage.Facet{"outputStatistics": lineage.OutputStatistics(m.Rows, m.Bytes, len(m.Files))}
		}
	}
	return out
}

// terminalTimeout bounds the delivery of a run's or step's last event once
// the run's own context may be cancelled (Ctrl-C, SIGTERM, a lost lease).
const terminalTimeout = 30 * time.Second

// terminalContext is the context of a terminal event (COMPLETE, FAIL,
// ABORT): not cancelled with the run, since an ABORT must still be
// delivered after the run's context ended, but bounded, so that an
// unreachable endpoint cannot hold the process.
func terminalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), terminalTimeout)
}

func (r *recorder) stepEnd(ctx context.Context, st StepSpec, id string, sr *StepResult, err error) {
	ctx, cancel := terminalContext(ctx)
	defer cancel()
	kind := endType(err)
	ev := lineage.NewEvent(kind, r.now(), id, r.stepJob(st))
	ev.Run.Facets["parent"] = lineage.Parent(r.runID, r.spec.Name)
	w := st.work()
	r.jobFacets(&ev, "JOB", stepDoc(w))
	a := lineage.AuditRecord{Action: "step", Job: r.stepJob(st), RunID: id, Outcome: outcome(kind)}
	if err != nil {
		ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error())
		a.Error = err.Error()
	}
	// The work records its reads and, when it finished, its outcome.
	if w != nil {
		w.record(ctx, r, &ev, &a, sr)
	}
	r.emit.Emit(ctx, ev)
	r.auditAppend(ctx, a)
}

func (r *recorder) finish(ctx context.Context, res *Result, err error) {
	ctx, cancel := terminalContext(ctx)
	defer cancel()
	kind := endType(err)
	ev := lineage.NewEvent(kind, r.now(), r.runID, r.spec.Name)
	ev.Run.Facets["nominalTime"] = lineage.NominalTime(r.opt.LogicalDate)
	ev.Run.Facets["processing_engine"] = lineage.ProcessingEngine(r.version())
	r.jobFacets(&ev, "PIPELINE", r.pipelineDoc())
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
	r.emit.Emit(ctx, ev)
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

// principal names who runs the pipeline, for the audit log and the
// ownership facet: VEIL_PRINCIPAL if set; for a pipeline on S3 the AWS
// caller identity (the ARN of the role or user whose credentials the run
// uses); else, or when STS cannot answer (S3-compatible servers have none),
// the operating system user.
func principal(ctx context.Context, spec *Spec, opt Options) string {
	if p := opt.Getenv("VEIL_PRINCIPAL"); p != "" {
		return p
	}
	onS3 := strings.HasPrefix(spec.State, "s3://")
	for _, a := range spec.Accesses() {
		onS3 = onS3 || strings.HasPrefix(a.URL, "s3://")
	}
	if onS3 {
		uo := opt.URL
		if uo.Getenv == nil {
			uo.Getenv = opt.Getenv
		}
		arn, err := s3.CallerIdentity(ctx, uo, 5*time.Second)
		if err == nil {
			return arn
		}
		opt.Log.Warn("AWS caller identity unknown; the audit log records the operating system user", "error", err.Error())
	}
	return lineage.Principal(opt.Getenv)
}
