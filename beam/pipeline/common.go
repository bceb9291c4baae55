package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
)

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

// shardFile is a file a worker wrote into the driver's write, reported to
// the step that commits.
type shardFile struct {
	File   dataset.ManifestFile
	Schema string
}

// emitFiles runs write, which adds files to out, and emits each new file's
// entry.
func emitFiles(out *dataset.Output, write func() error, emit func([]byte)) error {
	before := len(out.Files())
	if err := write(); err != nil {
		return err
	}
	for _, f := range out.Files()[before:] {
		b, err := json.Marshal(shardFile{File: f, Schema: out.Schema()})
		if err != nil {
			return err
		}
		emit(b)
	}
	return nil
}

// adoptFiles adds the files workers reported to out, and writes the shards
// no worker wrote (no subject fell in them) with writeEmpty.
func adoptFiles(ctx context.Context, out *dataset.Output, files func(*[]byte) bool, shards int, name func(int) string, writeEmpty func(int) error) error {
	var entries []dataset.ManifestFile
	schema := ""
	written := map[string]bool{}
	var b []byte
	for files(&b) {
		var sf shardFile
		if err := json.Unmarshal(b, &sf); err != nil {
			return err
		}
		entries = append(entries, sf.File)
		schema = sf.Schema
		written[sf.File.Key] = true
	}
	if err := out.AddFiles(entries, schema); err != nil {
		return err
	}
	for i := range shards {
		rel := name(i)
		key := strings.TrimSuffix(rel, ".parquet") + "-" + out.WriteID() + ".parquet"
		if !written[key] {
			if err := writeEmpty(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// readCommitted reads a JSON file of the write writeID, which the pipeline
// committed under prefix.
func readCommitted(ctx context.Context, store dataset.Store, prefix, writeID, name string, v any) error {
	m, err := dataset.ReadManifest(ctx, store, prefix)
	if err != nil {
		return err
	}
	if m.WriteID != writeID {
		return errors.New("beam pipeline finished but did not commit its output (another write replaced it?)")
	}
	mf, ok := m.Find(name)
	if !ok {
		return fmt.Errorf("%s/%s: no %s", store.Location(), prefix, name)
	}
	b, err := dataset.ReadAll(ctx, store, dataset.Join(prefix, mf.Key))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// stageLineage returns a function that emits a stage's OpenLineage events
// (to o.Lineage, if set) with the processing_engine facet naming Beam and
// the runner.
func stageLineage(ctx context.Context, o Options, day time.Time, job, doc, input string) func(kind string, f func(*lineage.Event)) {
	runID := newRunID()
	runner := o.Runner
	if runner == "" {
		runner = "prism"
	}
	engine := lineage.ProcessingEngineNamed("Apache Beam ("+runner+" runner)", BeamVersion)
	return func(kind string, f func(*lineage.Event)) {
		ev := lineage.NewEvent(kind, time.Now(), runID, job)
		ev.Run.Facets["nominalTime"] = lineage.NominalTime(day)
		ev.Run.Facets["processing_engine"] = engine
		ev.Job.Facets["jobType"] = lineage.JobType("JOB")
		ev.Job.Facets["documentation"] = lineage.Documentation(doc)
		ev.Inputs = []lineage.Dataset{lineage.DatasetFromURL(input)}
		if f != nil {
			f(&ev)
		}
		o.Lineage.Emit(context.WithoutCancel(ctx), ev)
	}
}

// encodeConfig serializes a job's configuration for the workers (gob, so
// that values JSON cannot hold, such as an infinite ε, travel too).
func encodeConfig(v any) (string, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

func decodeConfig(s string, v any) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return gob.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// readStats sums a stats side input into the stats vector.
func readStats(stat func(*int, *int64) bool) ([]int64, error) {
	st := make([]int64, statLen)
	var i int
	var n int64
	for stat(&i, &n) {
		if i < 0 || i >= statLen {
			return nil, fmt.Errorf("bad stat index %d", i)
		}
		st[i] += n
	}
	return st, nil
}

// filterReport makes the filter report of the row counts and subject
// marks counted in a stats vector.
func filterReport(f *privacy.Filter, st []int64) privacy.Report {
	var rows privacy.RowCounts
	copy(rows[:], st[statRows:])
	return f.ReportOf(rows, func(yield func(privacy.SubjectMark) bool) {
		for m := range 256 {
			for range st[statMarks+m] {
				if !yield(privacy.SubjectMark(m)) {
					return
				}
			}
		}
	})
}

// resumeWrite joins, on a worker, the write the driver started of a date's
// partition (URL/dt=DAY) of a table.
func resumeWrite(ctx context.Context, url, day string, contract *dataset.Contract, producer, writeID string) (*dataset.Output, error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return nil, err
	}
	s, prefix, err := open.DatePartition(ctx, url, d, urlOptions())
	if err != nil {
		return nil, err
	}
	return dataset.ResumeOutput(ctx, s, prefix, contract, producer, writeID)
}

// unitReader reads and filters the events row groups of a worker's units,
// keeping each file's footer open across the units of a bundle.
type unitReader struct {
	f     *privacy.Filtered
	scans map[string]*dataset.Scan
	batch dataset.Batch
	keep  []bool
}

// read reads the unit ("ROWGROUP KEY") into r.batch, projected to the
// filter's columns, and classifies its rows.
func (r *unitReader) read(ctx context.Context, unit string) (privacy.Tally, error) {
	rg, key, ok := strings.Cut(unit, " ")
	g, err := strconv.Atoi(rg)
	if !ok || err != nil {
		return privacy.Tally{}, fmt.Errorf("bad unit %q", unit)
	}
	if r.scans == nil {
		r.scans = map[string]*dataset.Scan{}
	}
	sc := r.scans[key]
	if sc == nil {
		cols := append([]string{"subject_id", "event_time"}, r.f.Columns...)
		if sc, err = dataset.OpenScan(ctx, r.f.Inputs.Events.Store, []string{key}, dataset.EventsContract, cols...); err != nil {
			return privacy.Tally{}, err
		}
		r.scans[key] = sc
	}
	if err := sc.Read(ctx, dataset.Unit{File: 0, RowGroup: g}, &r.batch); err != nil {
		return privacy.Tally{}, err
	}
	var tally privacy.Tally
	r.keep, tally, err = r.f.Filter.Classify(&r.batch, r.keep)
	return tally, err
}

func (r *unitReader) close() {
	for _, sc := range r.scans {
		sc.Close()
	}
}

// guardedUnits runs the PII guard on the files a job reads and names their
// row groups, the units of the pipeline.
func guardedUnits(ctx context.Context, f *privacy.Filtered, day time.Time, errInput error) ([]string, error) {
	if err := f.GuardPII(ctx); err != nil {
		return nil, err
	}
	sc, err := f.Scan(ctx)
	if err != nil {
		return nil, err
	}
	units := privacy.Units(sc)
	sc.Close()
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no events in the window of %s", errInput, day.Format(time.DateOnly))
	}
	return units, nil
}
