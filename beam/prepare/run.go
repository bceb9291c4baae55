package prepare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/segment"
)

// Run prepares the features of a segmentation job on a Beam runner. The
// driver (this process) checks the job, runs the PII guard, lists the row
// groups of the events in the retention window, starts the output and
// builds the pipeline; execute runs it (on Prism, Flink, Spark or
// Dataflow); the pipeline's last step commits the table. Run returns the
// report the pipeline wrote with the table.
func Run(ctx context.Context, cfg segment.Config, day time.Time, outURL string, shards int, opt dataset.URLOptions, engine string,
	execute func(context.Context, *beam.Pipeline) error) (*segment.PrepareReport, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if shards < 1 || shards > 100000 {
		return nil, fmt.Errorf("%w: shards %d must be in [1, 100000]", segment.ErrConfig, shards)
	}
	if _, err := segment.NewEventDecoder(cfg.Features); err != nil {
		return nil, err
	}
	f, err := segment.OpenFiltered(ctx, cfg, day, opt)
	if err != nil {
		return nil, err
	}
	if err := f.GuardPII(ctx); err != nil {
		return nil, err
	}
	sc, err := f.Scan(ctx)
	if err != nil {
		return nil, err
	}
	var units []string
	for _, u := range sc.Units() {
		units = append(units, fmt.Sprintf("%d %s", u.RowGroup, sc.Keys[u.File]))
	}
	sc.Close()
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no events in the window of %s", segment.ErrInput, day.Format(time.DateOnly))
	}
	out, err := segment.PreparedOutput(ctx, outURL, day, "veil-beam prepare", opt)
	if err != nil {
		return nil, err
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	end, windowDays := segment.FeatureWindow(f.Filter, day)
	job := Job{Config: string(cfgJSON), Day: day.UTC().Format(time.DateOnly), Out: outURL, WriteID: out.WriteID(), Shards: shards,
		End: end, WindowDays: windowDays, Engine: engine, Started: start.UnixNano()}
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
	m, err := dataset.ReadManifest(ctx, store, prefix)
	if err != nil {
		return nil, err
	}
	if m.WriteID != out.WriteID() {
		return nil, errors.New("beam pipeline finished but did not commit the table (another write replaced it?)")
	}
	mf, ok := m.Find(segment.PrepareReportFile)
	if !ok {
		return nil, fmt.Errorf("%s: no %s", out.Location(), segment.PrepareReportFile)
	}
	b, err := dataset.ReadAll(ctx, store, dataset.Join(prefix, mf.Key))
	if err != nil {
		return nil, err
	}
	var rep segment.PrepareReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
