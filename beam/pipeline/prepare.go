// Package pipeline holds veil's stages on Apache Beam. Prepare is the
// consent-, retention- and erasure-filtered scan of the events into
// per-subject features, written as veil's prepared table. The unit of work
// is a Parquet row group, read by veil's own reader and filtered and
// decoded by veil's own code (segment.EventDecoder, privacy.Filter), so
// Beam's per-element overhead is paid per row group and per subject, not
// per event. The table equals the one `veil segment prepare` writes on one
// machine.
package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
)

func init() {
	register.DoFn5x1[context.Context, string, func(string, []byte), func(int, int64), func(string, int64), error](&unitFn{})
	register.DoFn5x1[context.Context, string, []byte, func(int, []byte), func(int, int64), error](&subjectFn{})
	register.DoFn4x1[context.Context, int, func(*[]byte) bool, func([]byte), error](&shardFn{})
	register.DoFn5x1[context.Context, []byte, func(*[]byte) bool, func(*int, *int64) bool, func(*string, *int64) bool, error](&commitFn{})
	register.Combiner1[[]byte](&mergeFn{})
	register.Emitter2[string, []byte]()
	register.Emitter2[int, []byte]()
	register.Emitter2[int, int64]()
	register.Emitter2[string, int64]()
	register.Emitter1[[]byte]()
	register.Iter1[[]byte]()
	register.Iter2[int, int64]()
	register.Iter2[string, int64]()
	beam.RegisterType(reflectTypeOf[Job]())
}

// Job is what every worker needs to know, serialized into each DoFn.
type Job struct {
	Config     string  // the segmentation job (encodeConfig)
	Day        string  // logical date, YYYY-MM-DD
	Out        string  // URL of the prepared table (the date's partition goes under it)
	WriteID    string  // the write the driver started
	Shards     int     // files of the table
	End        int64   // end of the logical day, µs
	WindowDays float32 // the filter's window, days
	Engine     string  // for the report
	Started    int64   // when the driver started, Unix ns, for the report
	Identity   string  // ledger identity of the events (budget.Identity), which the table carries
}

func (j *Job) maxEvents() int {
	cfg, _, err := j.config()
	if err != nil {
		return 1
	}
	return cfg.Features.MaxEvents
}

func (j *Job) config() (segment.Config, time.Time, error) {
	var cfg segment.Config
	if err := decodeConfig(j.Config, &cfg); err != nil {
		return cfg, time.Time{}, err
	}
	day, err := time.Parse(time.DateOnly, j.Day)
	return cfg, day, err
}

// The stats vector that workers add up: rows by filter reason, subjects by
// filter mark, then events used, subjects sampled down and subjects with
// features.
const (
	statRows     = 0
	statMarks    = 16
	statUsed     = statMarks + 256
	statBounded  = statUsed + 1
	statSubjects = statBounded + 1
	statLen      = statSubjects + 1
)

func init() {
	if len(privacy.RowCounts{}) > statMarks {
		panic("prepare: more filter reasons than the stats vector holds")
	}
}

// filters caches each worker process's consent filter: building it reads
// the consent and erasure tables once per process, not per bundle.
var filters sync.Map // Job.Config+Day -> *filterOnce

type filterOnce struct {
	once sync.Once
	f    *segment.Filtered
	err  error
}

func workerFilter(ctx context.Context, j *Job) (*segment.Filtered, segment.Config, error) {
	cfg, day, err := j.config()
	if err != nil {
		return nil, cfg, err
	}
	key := j.Config + "\x00" + j.Day
	v, _ := filters.LoadOrStore(key, &filterOnce{})
	fo := v.(*filterOnce)
	fo.once.Do(func() { fo.f, fo.err = segment.OpenFiltered(ctx, cfg, day, urlOptions()) })
	if fo.err != nil {
		filters.CompareAndDelete(key, fo) // a retried bundle builds it again
	}
	return fo.f, cfg, fo.err
}

var getenv = os.Getenv

// urlOptions are the workers' store options, from their environment.
func urlOptions() dataset.URLOptions {
	return dataset.URLOptionsFromEnv(func(k string) string { return getenv(k) })
}

// unitFn reads one row group ("ROWGROUP FILE-KEY"), filters it and emits
// a partial per subject, the row counts and the category names.
type unitFn struct {
	Job Job

	unitReader
	dec *segment.EventDecoder
	max int

	// In-mapper combining: the partials, row counts and category names of
	// the bundle so far, emitted when the bundle finishes (or when the
	// partials grow past flushEvents), so that a subject seen in many row
	// groups of a bundle is shuffled once.
	acc    map[string]*partial
	events int
	rows   privacy.RowCounts
	names  map[int32]map[string]int64
}

// flushEvents bounds the events a bundle's partials hold before they are
// emitted.
const flushEvents = 4 << 20

func (fn *unitFn) Setup(ctx context.Context) error {
	f, cfg, err := workerFilter(ctx, &fn.Job)
	if err != nil {
		return err
	}
	fn.f = f
	fn.dec, err = segment.NewEventDecoder(cfg.Features)
	fn.max = cfg.Features.MaxEvents
	fn.reset()
	return err
}

func (fn *unitFn) reset() {
	fn.acc, fn.events, fn.rows, fn.names = map[string]*partial{}, 0, privacy.RowCounts{}, map[int32]map[string]int64{}
}

// flush emits what the bundle gathered.
func (fn *unitFn) flush(emit func(string, []byte), emitStat func(int, int64), emitName func(string, int64)) {
	var buf []byte
	for s, p := range fn.acc {
		buf = p.encode(buf[:0])
		emit(s, slices.Clone(buf))
	}
	for r, n := range fn.rows {
		if n != 0 {
			emitStat(statRows+r, n)
		}
	}
	for b, m := range fn.names {
		for name, n := range m {
			emitName(strconv.Itoa(int(b))+"\x00"+name, n)
		}
	}
	fn.reset()
}

func (fn *unitFn) FinishBundle(emit func(string, []byte), emitStat func(int, int64), emitName func(string, int64)) {
	fn.flush(emit, emitStat, emitName)
}

func (fn *unitFn) Teardown() { fn.close() }

func (fn *unitFn) ProcessElement(ctx context.Context, unit string, emit func(string, []byte), emitStat func(int, int64), emitName func(string, int64)) error {
	tally, err := fn.read(ctx, unit)
	if err != nil {
		return err
	}
	keep := fn.keep
	parts := fn.dec.Partials(&fn.batch, keep, fn.names)
	for s, m := range tally.Marks {
		p := fn.acc[s]
		if p == nil {
			p = &partial{}
			fn.acc[s] = p
		}
		q := partial{Mark: m}
		if fp := parts[s]; fp != nil {
			q.SubjectPartial = *fp
			fn.events += len(fp.Sample)
		}
		p.merge(&q, fn.max)
	}
	for r, n := range tally.Rows {
		fn.rows[r] += n
	}
	if fn.events > flushEvents {
		fn.flush(emit, emitStat, emitName)
	}
	return nil
}

// mergeFn combines two encoded partials of one subject, keeping at most
// twice the job's bound of events (Row applies the bound exactly). The
// values are veil's own encoding, made by unitFn: a corrupt one is a bug,
// and fails the bundle.
type mergeFn struct {
	MaxEvents int
}

func (fn *mergeFn) MergeAccumulators(a, b []byte) []byte {
	pa, err := decode(a)
	if err != nil {
		panic(err)
	}
	pb, err := decode(b)
	if err != nil {
		panic(err)
	}
	pa.merge(pb, fn.MaxEvents)
	return pa.encode(nil)
}

// subjectFn turns a subject's merged partial into its row of features
// (keyed by shard) and its stats.
type subjectFn struct {
	Job Job
	cfg segment.Config
}

func (fn *subjectFn) Setup() error {
	var err error
	fn.cfg, _, err = fn.Job.config()
	return err
}

func (fn *subjectFn) ProcessElement(ctx context.Context, key string, enc []byte, emit func(int, []byte), emitStat func(int, int64)) error {
	p, err := decode(enc)
	if err != nil {
		return err
	}
	emitStat(statMarks+int(p.Mark), 1)
	if p.Count > 0 {
		row, bounded := p.Row(fn.cfg.Features, fn.Job.End, fn.Job.WindowDays)
		emitStat(statUsed, min(p.Count, int64(fn.cfg.Features.MaxEvents)))
		emitStat(statSubjects, 1)
		if bounded {
			emitStat(statBounded, 1)
		}
		emit(segment.Shard(key, fn.Job.Shards), encodeRow(key, p.Region, row))
	}
	return nil
}

func encodeRow(subject, region string, f []float32) []byte {
	b := binary.AppendUvarint(nil, uint64(len(subject)))
	b = append(b, subject...)
	b = binary.AppendUvarint(b, uint64(len(region)))
	b = append(b, region...)
	b = binary.AppendUvarint(b, uint64(len(f)))
	for _, v := range f {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func decodeRow(b []byte) (dataset.SubjectFeatures, error) {
	var r dataset.SubjectFeatures
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	subject, ok1 := str()
	region, ok2 := str()
	n, k := binary.Uvarint(b)
	if !ok1 || !ok2 || k <= 0 || n*4 != uint64(len(b)-k) {
		return r, errCorrupt
	}
	b = b[k:]
	r.SubjectID = subject
	if region != "" {
		r.Region = &region
	}
	r.Features = make([]float32, n)
	for i := range r.Features {
		r.Features[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return r, nil
}

// shardFn writes one shard of the table into the driver's write and emits
// the file's manifest entry (JSON).
type shardFn struct {
	Job Job
	out *dataset.Output
}

func (fn *shardFn) Setup(ctx context.Context) error {
	var err error
	fn.out, err = resumeWrite(ctx, fn.Job.Out, fn.Job.Day, dataset.SubjectFeaturesContract, "veil-beam prepare", fn.Job.WriteID)
	return err
}

func (fn *shardFn) ProcessElement(ctx context.Context, shard int, rows func(*[]byte) bool, emit func([]byte)) error {
	var all []dataset.SubjectFeatures
	var b []byte
	for rows(&b) {
		r, err := decodeRow(b)
		if err != nil {
			return err
		}
		all = append(all, r)
	}
	return emitFiles(fn.out, func() error { return segment.WriteShard(ctx, fn.out, shard, all) }, emit)
}

// commitFn runs once, after every shard is written: it writes the shards
// no subject fell in, the feature names and the report, and commits the
// manifest.
type commitFn struct {
	Job Job
}

func (fn *commitFn) ProcessElement(ctx context.Context, _ []byte, files func(*[]byte) bool, stat func(*int, *int64) bool, names func(*string, *int64) bool) error {
	f, cfg, err := workerFilter(ctx, &fn.Job)
	if err != nil {
		return err
	}
	out, err := resumeWrite(ctx, fn.Job.Out, fn.Job.Day, dataset.SubjectFeaturesContract, "veil-beam prepare", fn.Job.WriteID)
	if err != nil {
		return err
	}
	if err := adoptFiles(ctx, out, files, fn.Job.Shards, segment.ShardFile, func(i int) error {
		return segment.WriteShard(ctx, out, i, nil)
	}); err != nil {
		return err
	}
	counts := map[int32]map[string]int64{}
	var key string
	var n int64
	for names(&key, &n) {
		b, name, _ := strings.Cut(key, "\x00")
		bucket, err := strconv.Atoi(b)
		if err != nil {
			return fmt.Errorf("prepare: bad category key %q", key)
		}
		if counts[int32(bucket)] == nil {
			counts[int32(bucket)] = map[string]int64{}
		}
		counts[int32(bucket)][name] += n
	}
	st, err := readStats(stat)
	if err != nil {
		return err
	}
	report := filterReport(f.Filter, st)
	rep := &segment.PrepareReport{LogicalDate: fn.Job.Day, Events: cfg.Events, Output: out.Location(), Engine: fn.Job.Engine,
		Shards: fn.Job.Shards, Subjects: int(st[statSubjects]), EventsUsed: st[statUsed], Bounded: int(st[statBounded]),
		Features: cfg.Features, Filter: report, Seconds: time.Since(time.Unix(0, fn.Job.Started)).Seconds()}
	if err := segment.WritePreparedMeta(ctx, out, segment.FeatureNames(cfg.Features, counts), rep); err != nil {
		return err
	}
	out.SetIdentity(fn.Job.Identity)
	_, err = out.Commit(ctx, map[string]string{"logical_date": rep.LogicalDate, "job": "segment-prepare", "engine": rep.Engine})
	return err
}

// Build adds the Prepare stage to a pipeline: units are "ROWGROUP KEY"
// strings naming the row groups of the events to read.
func Build(s beam.Scope, job Job, units []string) {
	s = s.Scope("veil.prepare")
	us := beam.Reshuffle(s, beam.CreateList(s, units))
	parts, unitStats, names := beam.ParDo3(s, &unitFn{Job: job}, us)
	merged := beam.CombinePerKey(s, &mergeFn{MaxEvents: job.maxEvents()}, parts)
	rows, subjectStats := beam.ParDo2(s, &subjectFn{Job: job}, merged)
	files := beam.ParDo(s, &shardFn{Job: job}, beam.GroupByKey(s, rows))
	st := stats.SumPerKey(s, beam.Flatten(s, unitStats, subjectStats))
	beam.ParDo0(s, &commitFn{Job: job}, beam.Impulse(s),
		beam.SideInput{Input: files}, beam.SideInput{Input: st}, beam.SideInput{Input: stats.SumPerKey(s, names)})
}
