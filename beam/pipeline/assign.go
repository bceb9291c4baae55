package pipeline

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
)

// Assign is the second stage: every subject of a prepared table is scored
// against the fitted centroids (a side input small enough for every
// worker), the exact per-cluster counts are combined, the cohort floor is
// planned once on them (with noisy sizes drawn once, when the job asks for
// them, after the ledger recorded the spend), and the subjects who also
// allow marketing are exported, sharded, into one committed run.

func init() {
	register.DoFn4x1[context.Context, string, func(string, []byte), func(int, int64), error](&scoreFn{})
	register.DoFn4x1[context.Context, []byte, func(*int, *int64) bool, func([]byte), error](&planFn{})
	register.DoFn6x1[context.Context, string, []byte, []byte, func(int, []byte), func(string, int64), error](&exportFn{})
	register.DoFn5x1[context.Context, int, func(*[]byte) bool, func(*string, *int64) bool, func([]byte), error](&assignShardFn{})
	register.DoFn5x1[context.Context, []byte, func(*[]byte) bool, []byte, func(*string, *int64) bool, error](&assignCommitFn{})
	register.Emitter2[string, int64]()
	register.Iter2[int, int64]()
	beam.RegisterType(reflectTypeOf[AssignJob]())
}

// AssignJob is what every worker of an assignment needs to know.
type AssignJob struct {
	Config   string // the segmentation job (encodeConfig)
	Model    string // segment.Model (encodeConfig)
	Day      string
	Prepared string // URL of the prepared table's date
	RunID    string
	WriteID  string
	Shards   int
	Engine   string
	Started  int64
	// Steward is the location of the run's steward report (exact counts),
	// opened by the driver, and StewardWriteID its write.
	Steward        string
	StewardWriteID string
}

func (j *AssignJob) decode() (segment.Config, *segment.Model, time.Time, error) {
	var cfg segment.Config
	var m segment.Model
	if err := decodeConfig(j.Config, &cfg); err != nil {
		return cfg, nil, time.Time{}, err
	}
	if err := decodeConfig(j.Model, &m); err != nil {
		return cfg, nil, time.Time{}, err
	}
	day, err := time.Parse(time.DateOnly, j.Day)
	return cfg, &m, day, err
}

// scoreFn reads one row group of the prepared table ("ROWGROUP KEY") and
// emits each subject's nearest cluster and distance, and per-cluster
// counts.
type scoreFn struct {
	Job   AssignJob
	model *segment.Model
	store dataset.Store
	files map[string]*dataset.ParquetFile
}

func (fn *scoreFn) Setup(ctx context.Context) error {
	_, m, _, err := fn.Job.decode()
	if err != nil {
		return err
	}
	fn.model = m
	ref, err := open.Ref(ctx, fn.Job.Prepared, urlOptions())
	fn.store, fn.files = ref.Store, map[string]*dataset.ParquetFile{}
	return err
}

func (fn *scoreFn) Teardown() {
	for _, f := range fn.files {
		f.Close()
	}
}

func (fn *scoreFn) ProcessElement(ctx context.Context, unit string, emit func(string, []byte), emitCount func(int, int64)) error {
	rg, key, ok := strings.Cut(unit, " ")
	g, err := strconv.Atoi(rg)
	if !ok || err != nil {
		return fmt.Errorf("assign: bad unit %q", unit)
	}
	f := fn.files[key]
	if f == nil {
		if f, err = dataset.OpenParquet(ctx, fn.store, key, dataset.SubjectFeaturesContract); err != nil {
			return err
		}
		fn.files[key] = f
	}
	d := len(fn.model.Features)
	x := make([]float32, d)
	counts := make([]int64, len(fn.model.Centroids))
	err = dataset.ReadRowGroupRows(ctx, f, g, func(rows []dataset.SubjectFeatures) error {
		for _, r := range rows {
			if len(r.Features) != d {
				return fmt.Errorf("%w: %s: subject has %d features, the model %d", segment.ErrInput, key, len(r.Features), d)
			}
			c, dist := fn.model.Assign(r.Features, x)
			counts[c]++
			b := binary.AppendUvarint(nil, uint64(c))
			emit(r.SubjectID, binary.LittleEndian.AppendUint64(b, math.Float64bits(dist)))
		}
		return nil
	})
	for c, n := range counts {
		if n > 0 {
			emitCount(c, n)
		}
	}
	return err
}

// plan is the floor's decision, computed once.
type plan struct {
	Final   []int                // cluster -> cohort, -1 suppressed
	Cohorts []segment.CohortSize // with exact and noisy sizes
}

// planFn plans the cohorts once from the combined cluster counts.
type planFn struct {
	Job AssignJob
}

func (fn *planFn) ProcessElement(ctx context.Context, _ []byte, counts func(*int, *int64) bool, emit func([]byte)) error {
	cfg, m, _, err := fn.Job.decode()
	if err != nil {
		return err
	}
	n := make([]int64, len(m.Centroids))
	var c int
	var v int64
	for counts(&c, &v) {
		if c < 0 || c >= len(n) {
			return fmt.Errorf("assign: cluster %d out of range", c)
		}
		n[c] += v
	}
	final, cohorts, err := segment.PlanCohorts(m, n, cfg.Floor, cfg.NoisySizes)
	if err != nil {
		return err
	}
	b, err := json.Marshal(plan{Final: final, Cohorts: cohorts})
	if err != nil {
		return err
	}
	emit(b)
	return nil
}

// exportFn maps each subject to its cohort and keeps those who allow
// marketing (keyed by shard), counting the others by reason.
type exportFn struct {
	Job  AssignJob
	f    *segment.Filtered
	plan *plan
}

func (fn *exportFn) Setup(ctx context.Context) error {
	var err error
	fn.f, _, err = workerFilter(ctx, &Job{Config: fn.Job.Config, Day: fn.Job.Day})
	return err
}

func (fn *exportFn) ProcessElement(ctx context.Context, subject string, enc []byte, planJSON []byte, emit func(int, []byte), emitStat func(string, int64)) error {
	if fn.plan == nil {
		var p plan
		if err := json.Unmarshal(planJSON, &p); err != nil {
			return err
		}
		fn.plan = &p
	}
	c, n := binary.Uvarint(enc)
	if n <= 0 || len(enc) != n+8 || c >= uint64(len(fn.plan.Final)) {
		return errCorrupt
	}
	emitStat("subjects", 1)
	cohort := fn.plan.Final[c]
	switch {
	case cohort < 0:
		emitStat("suppressed", 1)
	default:
		if r := fn.f.Index.Decide(subject, []string{privacy.Marketing}); r != privacy.Keep {
			emitStat("not_exported:"+r.String(), 1)
			return nil
		}
		emitStat(fmt.Sprintf("exported:%d", cohort), 1)
		row := binary.AppendUvarint(nil, uint64(len(subject)))
		row = append(row, subject...)
		row = binary.AppendUvarint(row, uint64(cohort))
		row = append(row, enc[n:]...)
		emit(segment.Shard(subject, fn.Job.Shards), row)
	}
	return nil
}

func decodeAssignment(b []byte, runID string) (dataset.CohortAssignment, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return dataset.CohortAssignment{}, errCorrupt
	}
	subject := string(b[k : k+int(n)])
	b = b[k+int(n):]
	c, k := binary.Uvarint(b)
	if k <= 0 || len(b) != k+8 {
		return dataset.CohortAssignment{}, errCorrupt
	}
	return dataset.CohortAssignment{SubjectID: subject, CohortID: int64(c), Distance: math.Float64frombits(binary.LittleEndian.Uint64(b[k:])), RunID: runID}, nil
}

// assignShardFn writes one shard of the export, without the rows of
// cohorts withheld by the floor on the exact exported counts.
type assignShardFn struct {
	Job     AssignJob
	out     *dataset.Output
	minSize int
}

func (fn *assignShardFn) Setup(ctx context.Context) error {
	cfg, _, _, err := fn.Job.decode()
	if err != nil {
		return err
	}
	fn.minSize = cfg.Floor.MinSize
	fn.out, err = resumeAssign(ctx, &fn.Job)
	return err
}

// exportedPerCohort sums the "exported:COHORT" statistics over n cohorts
// (n < 0: as many as the statistics name) and returns the other statistics.
func exportedPerCohort(st func(*string, *int64) bool, n int) ([]int64, map[string]int64, error) {
	per := make([]int64, max(0, n))
	other := map[string]int64{}
	var k string
	var v int64
	for st(&k, &v) {
		c, ok := strings.CutPrefix(k, "exported:")
		if !ok {
			other[k] += v
			continue
		}
		i, err := strconv.Atoi(c)
		if err != nil || i < 0 || (n >= 0 && i >= n) {
			return nil, nil, fmt.Errorf("assign: bad statistic %q", k)
		}
		for len(per) <= i {
			per = append(per, 0)
		}
		per[i] += v
	}
	return per, other, nil
}

// resumeSteward resumes the steward report the driver opened.
func resumeSteward(ctx context.Context, j *AssignJob) (*dataset.Output, error) {
	ref, err := open.Ref(ctx, j.Steward, urlOptions())
	if err != nil {
		return nil, err
	}
	out, err := dataset.ResumeOutput(ctx, ref.Store, ref.Key, nil, "veil-beam assign", j.StewardWriteID)
	if err != nil {
		return nil, err
	}
	out.SetClass(dataset.ClassSteward)
	return out, nil
}

func resumeAssign(ctx context.Context, j *AssignJob) (*dataset.Output, error) {
	cfg, _, day, err := j.decode()
	if err != nil {
		return nil, err
	}
	s, prefix, err := segment.AssignmentLocation(ctx, cfg, day, j.RunID, urlOptions())
	if err != nil {
		return nil, err
	}
	out, err := dataset.ResumeOutput(ctx, s, prefix, dataset.CohortAssignmentsContract, "veil-beam assign", j.WriteID)
	if err != nil {
		return nil, err
	}
	out.SetClass(dataset.ClassRelease)
	return out, nil
}

func (fn *assignShardFn) ProcessElement(ctx context.Context, shard int, rows func(*[]byte) bool, st func(*string, *int64) bool, emit func([]byte)) error {
	per, _, err := exportedPerCohort(st, -1)
	if err != nil {
		return err
	}
	_, drop, _ := segment.ExportFloor(per, fn.minSize)
	var all []dataset.CohortAssignment
	var b []byte
	for rows(&b) {
		r, err := decodeAssignment(b, fn.Job.RunID)
		if err != nil {
			return err
		}
		if !drop[r.CohortID] {
			all = append(all, r)
		}
	}
	return emitFiles(fn.out, func() error { return segment.WriteAssignmentShard(ctx, fn.out, shard, all) }, emit)
}

// assignCommitFn writes the empty shards, the sizes and the report, and
// commits the run.
type assignCommitFn struct {
	Job AssignJob
}

func (fn *assignCommitFn) ProcessElement(ctx context.Context, _ []byte, files func(*[]byte) bool, planJSON []byte, st func(*string, *int64) bool) error {
	out, err := resumeAssign(ctx, &fn.Job)
	if err != nil {
		return err
	}
	if err := adoptFiles(ctx, out, files, fn.Job.Shards, segment.AssignmentShardFile, func(i int) error {
		return segment.WriteAssignmentShard(ctx, out, i, nil)
	}); err != nil {
		return err
	}
	var p plan
	if err := json.Unmarshal(planJSON, &p); err != nil {
		return err
	}
	cfg, _, _, err := fn.Job.decode()
	if err != nil {
		return err
	}
	stw, err := resumeSteward(ctx, &fn.Job)
	if err != nil {
		return err
	}
	noisy := cfg.NoisySizes > 0
	rep := &segment.AssignReport{RunID: fn.Job.RunID, LogicalDate: fn.Job.Day, Prepared: fn.Job.Prepared, Output: out.Location(), Engine: fn.Job.Engine,
		StewardReport: stw.Location(), NotDP: segment.AssignNotDP(noisy), NoisySizes: noisy,
		NotExported: map[string]int{}, Cohorts: p.Cohorts, Seconds: time.Since(time.Unix(0, fn.Job.Started)).Seconds()}
	per, other, err := exportedPerCohort(st, len(p.Cohorts))
	if err != nil {
		return err
	}
	rep.Withheld, _, rep.Exported = segment.ExportFloor(per, cfg.Floor.MinSize)
	for k, n := range other {
		switch {
		case k == "subjects":
			rep.Subjects += n
		case k == "suppressed":
			rep.Suppressed += n
		case strings.HasPrefix(k, "not_exported:"):
			rep.NotExported[strings.TrimPrefix(k, "not_exported:")] += int(n)
		}
	}
	if err := segment.WriteAssignmentMeta(ctx, out, stw, rep); err != nil {
		return err
	}
	meta := map[string]string{"run_id": rep.RunID, "logical_date": rep.LogicalDate, "job": "segment-assign", "engine": rep.Engine}
	if _, err := stw.Commit(ctx, meta); err != nil {
		return err
	}
	_, err = out.Commit(ctx, meta)
	return err
}

// BuildAssign adds the Assign stage to a pipeline; units name the row
// groups of the prepared table's shards.
func BuildAssign(s beam.Scope, job AssignJob, units []string) {
	s = s.Scope("veil.assign")
	us := beam.Reshuffle(s, beam.CreateList(s, units))
	scored, counts := beam.ParDo2(s, &scoreFn{Job: job}, us)
	p := beam.ParDo(s, &planFn{Job: job}, beam.Impulse(s), beam.SideInput{Input: stats.SumPerKey(s, counts)})
	rows, exportStats := beam.ParDo2(s, &exportFn{Job: job}, scored, beam.SideInput{Input: p})
	sums := stats.SumPerKey(s, exportStats)
	files := beam.ParDo(s, &assignShardFn{Job: job}, beam.GroupByKey(s, rows), beam.SideInput{Input: sums})
	beam.ParDo0(s, &assignCommitFn{Job: job}, beam.Impulse(s),
		beam.SideInput{Input: files}, beam.SideInput{Input: p}, beam.SideInput{Input: sums})
}

// Assign assigns the subjects of a prepared table to the model's cohorts
// on a Beam runner and exports them, as `veil segment assign` does on one
// machine. A job with a privacy section is refused (segment.RefusePrivacy):
// the model is exact, so the assignment is no DP release and charges no
// budget; its exact figures go to a steward report.
func Assign(ctx context.Context, cfg segment.Config, day time.Time, prepared string, m *segment.Model, o Options) (rep *segment.AssignReport, err error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := segment.RefusePrivacy(cfg, "assign"); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	runID := cmp.Or(cfg.RunID, uuid.Must(uuid.NewV7()).String())
	emit := stageLineage(ctx, o, day, "segment.assign", "veil-beam assign: cohort assignments and the marketing export of a prepared table, on Apache Beam", prepared)
	emit("START", nil)
	defer func() {
		if err != nil {
			emit("FAIL", func(ev *lineage.Event) { ev.Run.Facets["errorMessage"] = lineage.ErrorMessage(err.Error()) })
			return
		}
		emit("COMPLETE", func(ev *lineage.Event) {
			out := lineage.DatasetFromURL(rep.Output)
			out.OutputFacets = map[string]lineage.Facet{"outputStatistics": lineage.OutputStatistics(rep.Exported, 0, 0)}
			ev.Outputs = []lineage.Dataset{out}
		})
	}()
	ref, err := open.Ref(ctx, prepared, o.URL)
	if err != nil {
		return nil, err
	}
	names, prep, keys, err := segment.PreparedMeta(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(names) != len(m.Features) {
		return nil, fmt.Errorf("%w: the model's %d features differ from the prepared table's %d", segment.ErrInput, len(m.Features), len(names))
	}
	for i := range names {
		if names[i] != m.Features[i] {
			return nil, fmt.Errorf("%w: the model's feature %d (%s) differs from the prepared table's (%s)", segment.ErrInput, i, m.Features[i].Name, names[i].Name)
		}
	}
	var units []string
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, ref.Store, k, dataset.SubjectFeaturesContract)
		if err != nil {
			return nil, err
		}
		for g := range f.File().RowGroups() {
			units = append(units, fmt.Sprintf("%d %s", g, k))
		}
		f.Close()
	}
	stw, err := segment.AssignmentSteward(ctx, cfg, day, runID, "veil-beam assign", o.URL)
	if err != nil {
		return nil, err
	}
	out, err := segment.AssignmentOutput(ctx, cfg, day, runID, "veil-beam assign", o.URL)
	if err != nil {
		stw.Abort(ctx)
		return nil, err
	}
	cfgEnc, err := encodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	modelEnc, err := encodeConfig(m)
	if err != nil {
		return nil, err
	}
	job := AssignJob{Config: cfgEnc, Model: modelEnc, Day: day.UTC().Format(time.DateOnly), Prepared: prepared, RunID: runID,
		WriteID: out.WriteID(), Shards: max(1, prep.Shards), Engine: o.Engine, Started: start.UnixNano(),
		Steward: stw.Location(), StewardWriteID: stw.Output().WriteID()}
	p, s := beam.NewPipelineWithRoot()
	BuildAssign(s, job, units)
	if err := o.Execute(ctx, p); err != nil {
		out.Abort(ctx)
		stw.Abort(ctx)
		return nil, fmt.Errorf("beam pipeline: %w", err)
	}
	// The full report (exact counts) is the steward report's.
	sref, err := open.Ref(ctx, stw.Location(), o.URL)
	if err != nil {
		return nil, err
	}
	rep = &segment.AssignReport{}
	if err := readCommitted(ctx, sref.Store, sref.Key, stw.Output().WriteID(), segment.AssignReportFile, rep); err != nil {
		return nil, err
	}
	return rep, nil
}
