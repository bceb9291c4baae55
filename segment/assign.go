package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/dp"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// Model is what assigning subjects to cohorts needs of a k-means fit: the
// standardization of the features and the centroids. It is small, and
// travels to every worker of a distributed assignment.
type Model struct {
	Features  []Feature   `json:"features"`
	Mean      []float64   `json:"mean"`
	Std       []float64   `json:"std"`
	Centroids [][]float32 `json:"centroids"` // in standardized units
}

// NewModel returns the model of centroids fitted on f.X.
func NewModel(f *Features, centroids *kmeans.Matrix) *Model {
	m := &Model{Features: f.Names, Mean: f.Mean, Std: f.Std}
	for c := range centroids.N {
		m.Centroids = append(m.Centroids, slices.Clone(centroids.Row(c)))
	}
	return m
}

// Validate checks the model's shape and values.
func (m *Model) Validate() error {
	d := len(m.Features)
	if d == 0 || len(m.Mean) != d || len(m.Std) != d || len(m.Centroids) == 0 {
		return fmt.Errorf("%w: model: %d features, %d means, %d deviations, %d centroids", ErrInput, d, len(m.Mean), len(m.Std), len(m.Centroids))
	}
	for j := range d {
		if math.IsNaN(m.Mean[j]) || math.IsInf(m.Mean[j], 0) || math.IsNaN(m.Std[j]) || math.IsInf(m.Std[j], 0) || m.Std[j] < 0 {
			return fmt.Errorf("%w: model: feature %d has mean %v and deviation %v", ErrInput, j, m.Mean[j], m.Std[j])
		}
	}
	for c, row := range m.Centroids {
		if len(row) != d {
			return fmt.Errorf("%w: model: centroid %d has %d values, want %d", ErrInput, c, len(row), d)
		}
		for _, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: model: centroid %d is not finite", ErrInput, c)
			}
		}
	}
	return nil
}

// CentroidMatrix returns the centroids as a matrix.
func (m *Model) CentroidMatrix() *kmeans.Matrix {
	x := kmeans.NewMatrix(len(m.Centroids), len(m.Features))
	for c, row := range m.Centroids {
		copy(x.Row(c), row)
	}
	return x
}

// Assign standardizes a subject's raw features into x (len(m.Features))
// and returns its nearest centroid (the lowest index among ties) and the
// distance to it in standardized units.
func (m *Model) Assign(raw, x []float32) (int, float64) {
	for j, v := range raw {
		x[j] = standardized(v, m.Mean[j], m.Std[j])
	}
	best, bestD := 0, math.Inf(1)
	for c, row := range m.Centroids {
		if d := kmeans.SquaredDistance(x, row); d < bestD {
			best, bestD = c, d
		}
	}
	return best, math.Sqrt(bestD)
}

// WriteModel stores the model as JSON at the URL (one object, replaced
// atomically).
func WriteModel(ctx context.Context, url string, m *Model, opt dataset.URLOptions) error {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return dataset.PutBytes(ctx, ref.Store, ref.Key, append(b, '\n'))
}

// ReadModel reads and checks a model.
func ReadModel(ctx context.Context, url string, opt dataset.URLOptions) (*Model, error) {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	b, err := dataset.ReadAll(ctx, ref.Store, ref.Key)
	if err != nil {
		return nil, err
	}
	m, err := ParseModel(b)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", url, err)
	}
	return m, nil
}

// ParseModel decodes and checks a model's JSON.
func ParseModel(b []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Fit fits k-means on a prepared table (see ReadPrepared) as a
// segmentation job would, and returns the model.
//
// A job with a privacy section is refused (ErrConfig): the model holds
// exact feature means and deviations and non-private centroids, which a
// DP job must not release; run it with veil segment (DP k-means) instead.
func Fit(ctx context.Context, cfg Config, prepared dataset.Ref) (*Model, *Report, error) {
	if err := RefusePrivacy(cfg, "fit"); err != nil {
		return nil, nil, err
	}
	feats, _, err := ReadPrepared(ctx, prepared)
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Subjects: len(feats.Subjects), Events: feats.Events, Bounded: feats.Bounded, Filter: feats.Filter}
	res, err := fitKMeans(ctx, cfg, feats, max(1, cfg.Workers), rep)
	if err != nil {
		return nil, nil, err
	}
	rep.K, rep.Inertia, rep.Iterations = res.Centroids.N, res.Inertia, res.Iterations
	return NewModel(feats, res.Centroids), rep, nil
}

// AssignReport is what assigning a prepared table to cohorts did. The
// model is exact (fit refuses privacy), so an assignment is never a DP
// release: noisy sizes next to exact centres protect no one and are not
// charged to the budget (as in veil segment runs without privacy). The
// full report, with exact counts and sizes, is the steward report's; with
// noisy sizes the release holds Public only.
type AssignReport struct {
	RunID       string `json:"run_id"`
	LogicalDate string `json:"logical_date"`
	Prepared    string `json:"prepared"`
	Output      string `json:"output"`
	Engine      string `json:"engine"`
	// StewardReport is where the exact figures were committed.
	StewardReport string `json:"steward_report,omitempty"`
	// NotDP says plainly that the assignment is not differentially private.
	NotDP string `json:"not_dp"`
	// NoisySizes records the configuration: sizes are released with noise,
	// so no exact count or size may appear in the release.
	NoisySizes bool `json:"noisy_sizes,omitempty"`
	// Exact (steward only when NoisySizes).
	Subjects    int64          `json:"subjects,omitempty"`
	Exported    int64          `json:"exported,omitempty"`
	NotExported map[string]int `json:"not_exported,omitempty"`
	Suppressed  int64          `json:"suppressed,omitempty"`
	// Withheld are the cohorts left out of the export: fewer of their
	// subjects allow marketing than the floor (exact, steward only).
	Withheld []WithheldCohort `json:"withheld_cohorts,omitempty"`
	Cohorts  []CohortSize     `json:"cohorts"`
	Seconds  float64          `json:"seconds"`
}

// AssignNotDP is an assignment's statement that it is not DP.
func AssignNotDP(noisy bool) string {
	s := "not differentially private: the model's centres, feature means and deviations are exact, and so are the assignments"
	if noisy {
		s += "; the cohort sizes carry noise, but next to exact centres that protects no one, so no privacy budget was charged"
	}
	return s
}

// Public is the report as released: with noisy sizes, without the exact
// counts, the withheld cohorts and the exact sizes (they are in the
// steward report). Without noisy sizes the run releases exact sizes, like
// a veil segment run without noisy sizes, and says it is not DP.
func (r *AssignReport) Public() *AssignReport {
	p := *r
	if !r.NoisySizes {
		return &p
	}
	p.Subjects, p.Exported, p.NotExported, p.Suppressed, p.Withheld = 0, 0, nil, 0, nil
	p.Cohorts = slices.Clone(r.Cohorts)
	for i := range p.Cohorts {
		p.Cohorts[i].Size = 0
	}
	return &p
}

// CohortSize is one cohort of an assignment: its k-means clusters, its
// exact size (steward only with noisy sizes) and, with noisy_sizes_sigma,
// its released noisy size.
type CohortSize struct {
	ID        int    `json:"cohort_id"`
	Clusters  []int  `json:"clusters"`
	Size      int64  `json:"size,omitempty"`
	NoisySize *int64 `json:"noisy_size,omitempty"`
	Note      string `json:"note,omitempty"`
}

// The files of an assignment output, besides the shards
// assignments-NNNNN.parquet (cohort_assignments contract).
const (
	CohortSizesFile  = "cohort_sizes.json"
	AssignReportFile = "assign_report.json"
)

// AssignmentShardFile names shard i of the assignments.
func AssignmentShardFile(i int) string { return fmt.Sprintf("assignments-%05d.parquet", i) }

// PlanCohorts turns exact cluster sizes into cohorts: the floor decided on
// the exact sizes (on the noisy ones, drawn here once from the secure
// source, when sigma > 0, so that the floor depends on released sizes
// only). final[c] is the cohort of cluster c, -1 if suppressed.
func PlanCohorts(m *Model, counts []int64, fl Floor, sigma float64) ([]int, []CohortSize, error) {
	sizes := slices.Clone(counts)
	var noisy []int64
	if sigma > 0 {
		r := rand.New(dp.NewSecureSource())
		noisy = make([]int64, len(counts))
		for c, n := range counts {
			z, err := dp.DiscreteGaussian(r, sigma)
			if err != nil {
				return nil, nil, err
			}
			noisy[c] = max(0, n+z)
		}
		sizes = noisy
	}
	what := "a size"
	if sigma > 0 {
		what = "a noisy size"
	}
	final, cohorts, err := PlanFloor(sizes, m.CentroidMatrix(), fl, what)
	if err != nil {
		return nil, nil, err
	}
	out := make([]CohortSize, len(cohorts))
	for i, co := range cohorts {
		out[i] = CohortSize{ID: co.ID, Note: co.Note}
	}
	for c, f := range final {
		if f < 0 {
			continue
		}
		out[f].Clusters = append(out[f].Clusters, c)
		out[f].Size += counts[c]
		if noisy != nil {
			if out[f].NoisySize == nil {
				out[f].NoisySize = new(int64)
			}
			*out[f].NoisySize += noisy[c]
		}
	}
	return final, out, nil
}

// AssignmentOutput starts the output of an assignment run:
// OUTPUT/dt=DATE/run=RUN_ID, like a segmentation run's.
func AssignmentOutput(ctx context.Context, cfg Config, day time.Time, runID, producer string, opt dataset.URLOptions) (*dataset.Output, error) {
	s, prefix, err := AssignmentLocation(ctx, cfg, day, runID, opt)
	if err != nil {
		return nil, err
	}
	out, err := dataset.NewOutput(ctx, s, prefix, dataset.CohortAssignmentsContract, producer)
	if err != nil {
		return nil, err
	}
	out.SetClass(dataset.ClassRelease)
	return out, nil
}

// AssignmentSteward starts the steward report of an assignment run, where
// segment runs put theirs (release.StewardURL).
func AssignmentSteward(ctx context.Context, cfg Config, day time.Time, runID, producer string, opt dataset.URLOptions) (*release.Steward, error) {
	return release.OpenSteward(ctx, release.StewardURL(cfg.Steward, cfg.Output), opt, "segment-assign", day, runID, producer)
}

// AssignmentLocation returns the store and prefix of an assignment run.
func AssignmentLocation(ctx context.Context, cfg Config, day time.Time, runID string, opt dataset.URLOptions) (dataset.Store, string, error) {
	ref, err := open.Ref(ctx, cfg.Output, opt)
	if err != nil {
		return nil, "", err
	}
	return ref.Store, dataset.Join(ref.Key, "dt="+day.UTC().Format(time.DateOnly), "run="+runID), nil
}

// WriteAssignmentMeta writes the cohort sizes and the report: in full to
// the steward report st, as released (Public) to the export out.
func WriteAssignmentMeta(ctx context.Context, out, st *dataset.Output, rep *AssignReport) error {
	pub := rep.Public()
	for _, f := range []struct {
		out  *dataset.Output
		name string
		v    any
	}{{st, CohortSizesFile, rep.Cohorts}, {st, AssignReportFile, rep}, {out, CohortSizesFile, pub.Cohorts}, {out, AssignReportFile, pub}} {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		if err := f.out.PutFile(ctx, f.name, append(b, '\n'), 0); err != nil {
			return err
		}
	}
	return nil
}

// ExportFloor applies the cohort floor to an export's exact counts:
// exported[c] subjects of cohort c may be exported. It returns the
// withheld cohorts, the set of their ids (whose rows are dropped) and the
// number of subjects exported.
func ExportFloor(exported []int64, minSize int) ([]WithheldCohort, map[int64]bool, int64) {
	w := WithholdSmall(exported, minSize)
	drop := withheldSet(w)
	var n int64
	for c, k := range exported {
		if !drop[int64(c)] {
			n += k
		}
	}
	return w, drop, n
}

// WriteAssignmentShard writes the rows of shard i (sorted by subject here).
func WriteAssignmentShard(ctx context.Context, out *dataset.Output, i int, rows []dataset.CohortAssignment) error {
	slices.SortFunc(rows, func(a, b dataset.CohortAssignment) int { return strings.Compare(a.SubjectID, b.SubjectID) })
	return dataset.PutParquet(ctx, out, AssignmentShardFile(i), rows)
}

// AssignPrepared assigns every subject of a prepared table to a cohort of the
// model on this machine: nearest centroid, the floor on exact (or noisy)
// sizes, and an export of the subjects who also allow marketing, sharded
// like the table, under OUTPUT/dt=DATE/run=RUN_ID. veil-beam assign does
// the same on a Beam runner.
func AssignPrepared(ctx context.Context, cfg Config, day time.Time, prepared string, m *Model, opt dataset.URLOptions, log *slog.Logger) (*AssignReport, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := RefusePrivacy(cfg, "assign"); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	runID := cfg.RunID
	if runID == "" {
		runID = uuid.Must(uuid.NewV7()).String()
	}
	f, err := OpenFiltered(ctx, cfg, day, opt)
	if err != nil {
		return nil, err
	}
	ref, err := open.Ref(ctx, prepared, opt)
	if err != nil {
		return nil, err
	}
	feats, prep, err := ReadPrepared(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(feats.Names, m.Features) {
		return nil, fmt.Errorf("%w: the model's features differ from the prepared table's", ErrInput)
	}
	labels := make([]int, len(feats.Subjects))
	dists := make([]float64, len(feats.Subjects))
	counts := make([]int64, len(m.Centroids))
	x := make([]float32, feats.Raw.D)
	for i := range feats.Subjects {
		labels[i], dists[i] = m.Assign(feats.Raw.Row(i), x)
		counts[labels[i]]++
	}
	final, cohorts, err := PlanCohorts(m, counts, cfg.Floor, cfg.NoisySizes)
	if err != nil {
		return nil, err
	}
	st, err := AssignmentSteward(ctx, cfg, day, runID, "veil segment assign", opt)
	if err != nil {
		return nil, err
	}
	out, err := AssignmentOutput(ctx, cfg, day, runID, "veil segment assign", opt)
	if err != nil {
		st.Abort(ctx)
		return nil, err
	}
	rep := &AssignReport{RunID: runID, LogicalDate: day.UTC().Format(time.DateOnly), Prepared: prepared, Output: out.Location(), Engine: "veil",
		StewardReport: st.Location(), NotDP: AssignNotDP(cfg.NoisySizes > 0), NoisySizes: cfg.NoisySizes > 0,
		Subjects: int64(len(feats.Subjects)), NotExported: map[string]int{}, Cohorts: cohorts}
	shards := make([][]dataset.CohortAssignment, max(1, prep.Shards))
	perCohort := make([]int64, len(cohorts))
	for i, s := range feats.Subjects {
		c := final[labels[i]]
		if c < 0 {
			rep.Suppressed++
			continue
		}
		if r := f.Index.Decide(s, []string{privacy.Marketing}); r != privacy.Keep {
			rep.NotExported[r.String()]++
			continue
		}
		perCohort[c]++
		k := Shard(s, len(shards))
		shards[k] = append(shards[k], dataset.CohortAssignment{SubjectID: s, CohortID: int64(c), Distance: dists[i], RunID: runID})
	}
	// The floor on the export's exact counts (the plan may have used
	// noisy sizes, and counts subjects who do not allow marketing).
	var drop map[int64]bool
	rep.Withheld, drop, rep.Exported = ExportFloor(perCohort, cfg.Floor.MinSize)
	err = func() error {
		for i, rows := range shards {
			rows = slices.DeleteFunc(rows, func(r dataset.CohortAssignment) bool { return drop[r.CohortID] })
			if err := WriteAssignmentShard(ctx, out, i, rows); err != nil {
				return err
			}
		}
		rep.Seconds = time.Since(start).Seconds()
		if err := WriteAssignmentMeta(ctx, out, st.Output(), rep); err != nil {
			return err
		}
		meta := map[string]string{"run_id": runID, "logical_date": rep.LogicalDate, "job": "segment-assign", "engine": rep.Engine}
		if err := st.Commit(ctx, meta); err != nil {
			return err
		}
		_, err := out.Commit(ctx, meta)
		return err
	}()
	if err != nil {
		out.Abort(ctx)
		st.Abort(ctx)
		return nil, err
	}
	// Exact counts at debug level only: assignments are no DP release,
	// but DP pipelines assign too, and scheduler logs keep info.
	log.Info("subjects assigned", "cohorts", len(cohorts), "output", rep.Output)
	log.Debug("subjects assigned (exact counts)", "subjects", rep.Subjects, "exported", rep.Exported)
	return rep, nil
}

// RefusePrivacy refuses a DP job on the prepare/fit/assign path, which
// has no DP k-means: its model's centroids, means and deviations are exact.
func RefusePrivacy(cfg Config, step string) error {
	if cfg.Privacy == nil {
		return nil
	}
	return fmt.Errorf("%w: veil segment %s does not run DP k-means: its model holds exact centroids, feature means and deviations; run a job with a privacy section with veil segment", ErrConfig, step)
}
