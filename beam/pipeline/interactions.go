package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/train"
	"github.com/veil-privacy/veil/train/mf"
)

// PrepareInteractions is Prepare for training: the consented interactions
// of a training job (one per subject and item: summed weight, latest
// time), grouped by subject across workers, written as the prepared table
// `veil train prepare` writes. Contribution bounding stays with training.

func init() {
	register.DoFn4x1[context.Context, string, func(string, []byte), func(int, int64), error](&ixUnitFn{})
	register.Combiner1[[]byte](&ixMergeFn{})
	register.DoFn5x1[context.Context, string, []byte, func(int, []byte), func(int, int64), error](&ixSubjectFn{})
	register.DoFn4x1[context.Context, int, func(*[]byte) bool, func([]byte), error](&ixShardFn{})
	register.DoFn4x1[context.Context, []byte, func(*[]byte) bool, func(*int, *int64) bool, error](&ixCommitFn{})
	beam.RegisterType(reflectTypeOf[IxJob]())
}

// IxJob is what every worker of an interactions run needs to know.
type IxJob struct {
	Config  string // train.JobConfig (encodeConfig)
	Day     string
	Out     string
	WriteID string
	Shards  int
	Engine  string
	Started int64
	// Identity is the ledger identity of the events (budget.Identity),
	// which the table carries so that releases over it charge the events.
	Identity string
}

func (j *IxJob) decode() (train.JobConfig, time.Time, error) {
	var cfg train.JobConfig
	if err := decodeConfig(j.Config, &cfg); err != nil {
		return cfg, time.Time{}, err
	}
	day, err := time.Parse(time.DateOnly, j.Day)
	return cfg, day, err
}

var ixFilters sync.Map // Config+Day -> *ixFilterOnce

type ixFilterOnce struct {
	once sync.Once
	f    *train.Filtered
	err  error
}

func ixWorkerFilter(ctx context.Context, j *IxJob) (*train.Filtered, train.JobConfig, time.Time, error) {
	cfg, day, err := j.decode()
	if err != nil {
		return nil, cfg, day, err
	}
	key := j.Config + "\x00" + j.Day
	v, _ := ixFilters.LoadOrStore(key, &ixFilterOnce{})
	fo := v.(*ixFilterOnce)
	fo.once.Do(func() { fo.f, fo.err = train.OpenFiltered(ctx, cfg, day, urlOptions()) })
	if fo.err != nil {
		ixFilters.CompareAndDelete(key, fo) // a retried bundle builds it again
	}
	return fo.f, cfg, day, fo.err
}

// ixItem is one subject-item interaction being summed.
type ixItem struct {
	W float32
	T int64 // Unix seconds
}

// ixPartial is what part of the events says about one subject.
type ixPartial struct {
	Mark  privacy.SubjectMark
	Items map[string]ixItem
}

// add follows mf.Builder.Add: weights summed in float32 up to
// mf.MaxWeight, the latest time kept.
func (p *ixPartial) add(item string, w float32, t int64) {
	if p.Items == nil {
		p.Items = map[string]ixItem{}
	}
	it, ok := p.Items[item]
	if !ok {
		p.Items[item] = ixItem{w, t}
		return
	}
	p.Items[item] = ixItem{min(it.W+w, mf.MaxWeight), max(it.T, t)}
}

func (p *ixPartial) merge(q *ixPartial) {
	p.Mark = p.Mark.Merge(q.Mark)
	for item, it := range q.Items {
		p.add(item, it.W, it.T)
	}
}

func (p *ixPartial) encode(b []byte) []byte {
	b = append(b, byte(p.Mark))
	b = binary.AppendUvarint(b, uint64(len(p.Items)))
	keys := make([]string, 0, len(p.Items))
	for k := range p.Items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		it := p.Items[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(it.W))
		b = binary.AppendVarint(b, it.T)
	}
	return b
}

func decodeIx(b []byte) (*ixPartial, error) {
	if len(b) < 1 {
		return nil, errCorrupt
	}
	p := &ixPartial{Mark: privacy.SubjectMark(b[0]), Items: map[string]ixItem{}}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || len(b)-k-int(l) < 5 {
			return nil, errCorrupt
		}
		item := string(b[k : k+int(l)])
		b = b[k+int(l):]
		w := math.Float32frombits(binary.LittleEndian.Uint32(b))
		t, k2 := binary.Varint(b[4:])
		if k2 <= 0 {
			return nil, errCorrupt
		}
		b = b[4+k2:]
		p.Items[item] = ixItem{w, t}
	}
	return p, nil
}

// ixUnitFn reads one row group of events and gathers, per bundle, each
// subject's interactions and filter mark.
type ixUnitFn struct {
	Job IxJob

	unitReader
	dec   *train.InteractionDecoder
	acc   map[string]*ixPartial
	items int
	rows  privacy.RowCounts
}

func (fn *ixUnitFn) Setup(ctx context.Context) error {
	f, cfg, day, err := ixWorkerFilter(ctx, &fn.Job)
	if err != nil {
		return err
	}
	fn.f, fn.acc = f, map[string]*ixPartial{}
	fn.dec, err = train.NewInteractionDecoder(cfg.Interactions, day)
	return err
}

func (fn *ixUnitFn) Teardown() { fn.close() }

func (fn *ixUnitFn) flush(emit func(string, []byte), emitStat func(int, int64)) {
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
	fn.acc, fn.items, fn.rows = map[string]*ixPartial{}, 0, privacy.RowCounts{}
}

func (fn *ixUnitFn) FinishBundle(emit func(string, []byte), emitStat func(int, int64)) {
	fn.flush(emit, emitStat)
}

func (fn *ixUnitFn) ProcessElement(ctx context.Context, unit string, emit func(string, []byte), emitStat func(int, int64)) error {
	tally, err := fn.read(ctx, unit)
	if err != nil {
		return err
	}
	keep := fn.keep
	get := func(s string) *ixPartial {
		p := fn.acc[s]
		if p == nil {
			p = &ixPartial{}
			fn.acc[s] = p
		}
		return p
	}
	for s, m := range tally.Marks {
		p := get(s)
		p.Mark = p.Mark.Merge(m)
	}
	dict := fn.batch.Column("subject_id").Str.Dict
	fn.dec.Decode(&fn.batch, keep, func(x int32, item string, w float64, at int64) {
		get(dict[x]).add(item, float32(w), time.UnixMicro(at).Unix())
		fn.items++
	})
	for r, n := range tally.Rows {
		fn.rows[r] += n
	}
	if fn.items > flushEvents {
		fn.flush(emit, emitStat)
	}
	return nil
}

type ixMergeFn struct{}

func (ixMergeFn) MergeAccumulators(a, b []byte) []byte {
	pa, err := decodeIx(a)
	if err != nil {
		panic(err)
	}
	pb, err := decodeIx(b)
	if err != nil {
		panic(err)
	}
	pa.merge(pb)
	return pa.encode(nil)
}

// ixSubjectFn emits a subject's interactions (one element per subject,
// keyed by shard) and its stats.
type ixSubjectFn struct {
	Job IxJob
}

func (fn *ixSubjectFn) ProcessElement(ctx context.Context, subject string, enc []byte, emit func(int, []byte), emitStat func(int, int64)) error {
	p, err := decodeIx(enc)
	if err != nil {
		return err
	}
	emitStat(statMarks+int(p.Mark), 1)
	if len(p.Items) > 0 {
		emitStat(statSubjects, 1)
		emitStat(statUsed, int64(len(p.Items)))
		b := binary.AppendUvarint(nil, uint64(len(subject)))
		emit(dataset.Shard(subject, fn.Job.Shards), p.encode(append(b, subject...)))
	}
	return nil
}

// ixShardFn writes one shard of the table into the driver's write.
type ixShardFn struct {
	Job IxJob
	out *dataset.Output
}

func (fn *ixShardFn) Setup(ctx context.Context) error {
	var err error
	fn.out, err = resumeWrite(ctx, fn.Job.Out, fn.Job.Day, train.InteractionsContract, "veil-beam prepare-interactions", fn.Job.WriteID)
	return err
}

func (fn *ixShardFn) ProcessElement(ctx context.Context, shard int, blocks func(*[]byte) bool, emit func([]byte)) error {
	var rows []train.InteractionRow
	var b []byte
	for blocks(&b) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errCorrupt
		}
		subject := string(b[k : k+int(n)])
		p, err := decodeIx(b[k+int(n):])
		if err != nil {
			return err
		}
		for item, it := range p.Items {
			rows = append(rows, train.InteractionRow{SubjectID: subject, ItemID: item, EventTime: time.Unix(it.T, 0).UTC(), Weight: float64(it.W)})
		}
	}
	return emitFiles(fn.out, func() error { return train.WriteInteractionsShard(ctx, fn.out, shard, rows) }, emit)
}

// ixCommitFn writes the empty shards and the report, and commits.
type ixCommitFn struct {
	Job IxJob
}

func (fn *ixCommitFn) ProcessElement(ctx context.Context, _ []byte, files func(*[]byte) bool, stat func(*int, *int64) bool) error {
	f, cfg, _, err := ixWorkerFilter(ctx, &fn.Job)
	if err != nil {
		return err
	}
	out, err := resumeWrite(ctx, fn.Job.Out, fn.Job.Day, train.InteractionsContract, "veil-beam prepare-interactions", fn.Job.WriteID)
	if err != nil {
		return err
	}
	if err := adoptFiles(ctx, out, files, fn.Job.Shards, train.InteractionsShardFile, func(i int) error {
		return train.WriteInteractionsShard(ctx, out, i, nil)
	}); err != nil {
		return err
	}
	st, err := readStats(stat)
	if err != nil {
		return err
	}
	rep := &train.InteractionsReport{LogicalDate: fn.Job.Day, Events: cfg.Events, Output: out.Location(), Engine: fn.Job.Engine, Shards: fn.Job.Shards,
		Subjects: st[statSubjects], Interactions: st[statUsed], Config: cfg.Interactions, Filter: filterReport(f.Filter, st),
		Seconds: time.Since(time.Unix(0, fn.Job.Started)).Seconds()}
	if err := train.WriteInteractionsReport(ctx, out, rep); err != nil {
		return err
	}
	out.SetIdentity(fn.Job.Identity)
	_, err = out.Commit(ctx, map[string]string{"logical_date": rep.LogicalDate, "job": "train-prepare", "engine": rep.Engine})
	return err
}

// BuildInteractions adds the interactions stage to a pipeline.
func BuildInteractions(s beam.Scope, job IxJob, units []string) {
	s = s.Scope("veil.prepare-interactions")
	us := beam.Reshuffle(s, beam.CreateList(s, units))
	parts, unitStats := beam.ParDo2(s, &ixUnitFn{Job: job}, us)
	merged := beam.CombinePerKey(s, ixMergeFn{}, parts)
	blocks, subjectStats := beam.ParDo2(s, &ixSubjectFn{Job: job}, merged)
	files := beam.ParDo(s, &ixShardFn{Job: job}, beam.GroupByKey(s, blocks))
	st := stats.SumPerKey(s, beam.Flatten(s, unitStats, subjectStats))
	beam.ParDo0(s, &ixCommitFn{Job: job}, beam.Impulse(s), beam.SideInput{Input: files}, beam.SideInput{Input: st})
}

// PrepareInteractions writes a training job's consented interactions as a
// prepared table on a Beam runner, as `veil train prepare` does on one
// machine.
func PrepareInteractions(ctx context.Context, cfg train.JobConfig, day time.Time, outURL string, o Options) (rep *train.InteractionsReport, err error) {
	start := time.Now()
	emit := stageLineage(ctx, o, day, "train.prepare", "veil-beam prepare-interactions: consented interactions of a training job, on Apache Beam", cfg.Events)
	emit("START", nil)
	defer func() {
		if err != nil {
			emit("FAIL", func(ev *lineage.Event) { ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error()) })
			return
		}
		emit("COMPLETE", func(ev *lineage.Event) {
			out := lineage.DatasetFromURL(rep.Output)
			out.OutputFacets = map[string]lineage.Facet{"outputStatistics": lineage.OutputStatistics(rep.Interactions, 0, rep.Shards)}
			ev.Outputs = []lineage.Dataset{out}
		})
	}()
	if o.Shards < 1 || o.Shards > 100000 {
		return nil, fmt.Errorf("%w: shards %d must be in [1, 100000]", mf.ErrConfig, o.Shards)
	}
	if _, err := train.NewInteractionDecoder(cfg.Interactions, day); err != nil {
		return nil, err
	}
	// The events' own identity, never the job's budget.dataset.
	identity, err := release.TableIdentity(ctx, cfg.Events, o.URL)
	if err != nil {
		return nil, err
	}
	f, err := train.OpenFiltered(ctx, cfg, day, o.URL)
	if err != nil {
		return nil, err
	}
	units, err := guardedUnits(ctx, f, day, mf.ErrInput)
	if err != nil {
		return nil, err
	}
	out, err := train.InteractionsOutput(ctx, outURL, day, "veil-beam prepare-interactions", o.URL)
	if err != nil {
		return nil, err
	}
	cfgEnc, err := encodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	job := IxJob{Config: cfgEnc, Day: day.UTC().Format(time.DateOnly), Out: outURL, WriteID: out.WriteID(), Shards: o.Shards, Engine: o.Engine, Started: start.UnixNano(), Identity: identity}
	p, s := beam.NewPipelineWithRoot()
	BuildInteractions(s, job, units)
	if err := o.Execute(ctx, p); err != nil {
		return nil, fmt.Errorf("beam pipeline: %w", err)
	}
	store, prefix, err := train.InteractionsLocation(ctx, outURL, day, o.URL)
	if err != nil {
		return nil, err
	}
	rep = &train.InteractionsReport{}
	if err := readCommitted(ctx, store, prefix, out.WriteID(), train.InteractionsReportFile, rep); err != nil {
		return nil, err
	}
	return rep, nil
}
