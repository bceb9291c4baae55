package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
)

// Prepare prepares the features of a segmentation job on a Beam runner. The
// driver (this process) checks the job, runs the PII guard, lists the row
// groups of the events in the retention window, starts the output and
// builds the pipeline; execute runs it (on Prism, Flink, Spark or
// Dataflow); the pipeline's last step commits the table. Run returns the
// report the pipeline wrote with the table.
func Prepare(ctx context.Context, cfg segment.Config, day time.Time, outURL string, shards int, opt dataset.URLOptions, engine string,
	execute func(context.Context, *beam.Pipeline) error) (*segment.PrepareReport, error) {
	return PrepareWith(ctx, cfg, day, outURL, Options{Shards: shards, URL: opt, Engine: engine, Execute: execute})
}

// Options are what the stages take besides the job.
type Options struct {
	Shards int
	URL    dataset.URLOptions
	// Engine names the runner in the report ("beam:flink@host:8099").
	Engine string
	// Runner names it in the lineage processing_engine facet (flink).
	Runner string
	// Execute runs the pipeline.
	Execute func(context.Context, *beam.Pipeline) error
	// Lineage, when set, receives the run's OpenLineage events (START, then
	// COMPLETE or FAIL) with the job segment.prepare.
	Lineage *lineage.Emitter
}

// BeamVersion is the Beam Go SDK veil-beam is built with.
const BeamVersion = "2.77.0"

// PrepareWith is Prepare with lineage and the runner's name.
func PrepareWith(ctx context.Context, cfg segment.Config, day time.Time, outURL string, o Options) (rep *segment.PrepareReport, err error) {
	start := time.Now()
	emit := stageLineage(ctx, o, day, "segment.prepare", "veil-beam prepare: consent-filtered per-subject features of a segmentation job, on Apache Beam", cfg.Events)
	emit("START", nil)
	defer func() {
		if err != nil {
			emit("FAIL", func(ev *lineage.Event) { ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error()) })
			return
		}
		emit("COMPLETE", func(ev *lineage.Event) {
			out := lineage.DatasetFromURL(rep.Output)
			out.Facets = map[string]lineage.Facet{}
			out.OutputFacets = map[string]lineage.Facet{"outputStatistics": lineage.OutputStatistics(int64(rep.Subjects), 0, rep.Shards)}
			ev.Outputs = []lineage.Dataset{out}
			f := rep.Filter
			ev.Run.Facets["veil_privacy"] = lineage.Privacy{Purposes: f.Purposes, LogicalDate: rep.LogicalDate, RowsRead: f.RowsRead, RowsKept: f.RowsKept,
				RowsDropped: f.RowsDropped, SubjectsKept: f.SubjectsKept, ConsentRecords: f.Consent.Records, ConsentSnapshot: f.Consent.Snapshot, Jurisdictions: f.Jurisdictions}.Facet()
		})
	}()
	shards, opt, execute := o.Shards, o.URL, o.Execute
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if shards < 1 || shards > 100000 {
		return nil, fmt.Errorf("%w: shards %d must be in [1, 100000]", segment.ErrConfig, shards)
	}
	if _, err := segment.NewEventDecoder(cfg.Features); err != nil {
		return nil, err
	}
	// The events' own identity, never the job's budget.dataset.
	identity, err := release.TableIdentity(ctx, cfg.Events, opt)
	if err != nil {
		return nil, err
	}
	f, err := segment.OpenFiltered(ctx, cfg, day, opt)
	if err != nil {
		return nil, err
	}
	units, err := guardedUnits(ctx, f, day, segment.ErrInput)
	if err != nil {
		return nil, err
	}
	out, err := segment.PreparedOutput(ctx, outURL, day, "veil-beam prepare", opt)
	if err != nil {
		return nil, err
	}
	cfgEnc, err := encodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	end, windowDays := segment.FeatureWindow(f.Filter, day)
	job := Job{Config: cfgEnc, Day: day.UTC().Format(time.DateOnly), Out: outURL, WriteID: out.WriteID(), Shards: shards,
		End: end, WindowDays: windowDays, Engine: o.Engine, Started: start.UnixNano(), Identity: identity}
	p, s := beam.NewPipelineWithRoot()
	Build(s, job, units)
	if err := execute(ctx, p); err != nil {
		// The write's files stay until the next write of the date, which
		// removes them (the _PENDING marker names this write).
		return nil, fmt.Errorf("beam pipeline: %w", err)
	}
	store, prefix, err := segment.PreparedLocation(ctx, outURL, day, opt)
	if err != nil {
		return nil, err
	}
	rep = &segment.PrepareReport{}
	if err := readCommitted(ctx, store, prefix, out.WriteID(), segment.PrepareReportFile, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func newRunID() string { return uuid.Must(uuid.NewV7()).String() }
