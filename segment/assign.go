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
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/dp"
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
func NewModel(f *Features, centroids *Matrix) *Model {
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
func (m *Model) CentroidMatrix() *Matrix {
	x := NewMatrix(len(m.Centroids), len(m.Features))
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
		if d := sqDist64(x, row); d < bestD {
			best, bestD = c, d
		}
	}
	return best, math.Sqrt(bestD)
}

// WriteModel stores the model as JSON at the URL (one object, replaced
// atomically).
func WriteModel(ctx context.Context, url string, m *Model, opt dataset.URLOptions) error {
	ref, err := dataset.ParseRef(ctx, url, opt)
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
	ref, err := dataset.ParseRef(ctx, url, opt)
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
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
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

// AssignReport is what assigning a prepared table to cohorts did.
type AssignReport struct {
	RunID       string         `json:"run_id"`
	LogicalDate string         `json:"logical_date"`
	Prepared    string         `json:"prepared"`
	Output      string         `json:"output"`
	Engine      string         `json:"engine"`
	Subjects    int64          `json:"subjects"`
	Exported    int64          `json:"exported"`
	NotExported map[string]int `json:"not_exported"`
	Suppressed  int64          `json:"suppressed"`
	Cohorts     []CohortSize   `json:"cohorts"`
	Spent       *budget.Record `json:"budget_spent,omitempty"`
	Seconds     float64        `json:"seconds"`
}

// CohortSize is one cohort of an assignment: its k-means clusters, its
// exact size and, with noisy_sizes_sigma, its released noisy size.
type CohortSize struct {
	ID        int    `json:"cohort_id"`
	Clusters  []int  `json:"clusters"`
	Size      int64  `json:"size"`
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

// SpendNoisySizes records the noisy sizes' release in the ledger before
// any data is read, as a segmentation job does. It charges the identity
// that the prepared table carries (its events'), or budget.dataset.
func SpendNoisySizes(ctx context.Context, cfg Config, prepared, runID string, day time.Time, opt dataset.URLOptions) (*budget.Record, error) {
	if cfg.NoisySizes <= 0 {
		return nil, nil
	}
	if cfg.Budget == nil {
		return nil, fmt.Errorf("%w: noisy_sizes_sigma needs a budget", ErrConfig)
	}
	store, err := dataset.OpenStore(ctx, cfg.Budget.Ledger, opt)
	if err != nil {
		return nil, err
	}
	name, err := budget.Identity(ctx, prepared, cfg.Budget.Dataset, opt)
	if err != nil {
		return nil, err
	}
	// The prepared table holds the features of the segmentation window.
	window, err := cfg.WindowDays()
	if err != nil {
		return nil, err
	}
	rec, err := budget.Open(store, "").Spend(ctx, budget.Request{Dataset: name, RunID: runID, Job: "segment.assign", LogicalDate: day, WindowDays: window, Accountant: "pld",
		Events: []accountant.Event{{Mechanism: accountant.DiscreteGaussian, Sigma: cfg.NoisySizes, Sensitivity: 1, Count: 1, Note: "noisy cohort sizes"}},
		Policy: cfg.Budget.Policy})
	return &rec, err
}

// AssignmentOutput starts the output of an assignment run:
// OUTPUT/dt=DATE/run=RUN_ID, like a segmentation run's.
func AssignmentOutput(ctx context.Context, cfg Config, day time.Time, runID, producer string, opt dataset.URLOptions) (*dataset.Output, error) {
	s, prefix, err := AssignmentLocation(ctx, cfg, day, runID, opt)
	if err != nil {
		return nil, err
	}
	return dataset.NewOutput(ctx, s, prefix, dataset.CohortAssignmentsContract, producer)
}

// AssignmentLocation returns the store and prefix of an assignment run.
func AssignmentLocation(ctx context.Context, cfg Config, day time.Time, runID string, opt dataset.URLOptions) (dataset.Store, string, error) {
	ref, err := dataset.ParseRef(ctx, cfg.Output, opt)
	if err != nil {
		return nil, "", err
	}
	return ref.Store, dataset.Join(ref.Key, "dt="+day.UTC().Format(time.DateOnly), "run="+runID), nil
}

// WriteAssignmentMeta writes the cohort sizes and the report.
func WriteAssignmentMeta(ctx context.Context, out *dataset.Output, rep *AssignReport) error {
	for _, f := range []struct {
		name string
		v    any
	}{{CohortSizesFile, rep.Cohorts}, {AssignReportFile, rep}} {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		if err := out.PutFile(ctx, f.name, append(b, '\n'), 0); err != nil {
			return err
		}
	}
	return nil
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
	spent, err := SpendNoisySizes(ctx, cfg, prepared, runID, day, opt)
	if err != nil {
		return nil, err
	}
	f, err := OpenFiltered(ctx, cfg, day, opt)
	if err != nil {
		return nil, err
	}
	ref, err := dataset.ParseRef(ctx, prepared, opt)
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
	out, err := AssignmentOutput(ctx, cfg, day, runID, "veil segment assign", opt)
	if err != nil {
		return nil, err
	}
	rep := &AssignReport{RunID: runID, LogicalDate: day.UTC().Format(time.DateOnly), Prepared: prepared, Output: out.Location(), Engine: "veil",
		Subjects: int64(len(feats.Subjects)), NotExported: map[string]int{}, Cohorts: cohorts, Spent: spent}
	shards := make([][]dataset.CohortAssignment, max(1, prep.Shards))
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
		rep.Exported++
		k := Shard(s, len(shards))
		shards[k] = append(shards[k], dataset.CohortAssignment{SubjectID: s, CohortID: int64(c), Distance: dists[i], RunID: runID})
	}
	err = func() error {
		for i, rows := range shards {
			if err := WriteAssignmentShard(ctx, out, i, rows); err != nil {
				return err
			}
		}
		rep.Seconds = time.Since(start).Seconds()
		if err := WriteAssignmentMeta(ctx, out, rep); err != nil {
			return err
		}
		_, err := out.Commit(ctx, map[string]string{"run_id": runID, "logical_date": rep.LogicalDate, "job": "segment-assign", "engine": rep.Engine})
		return err
	}()
	if err != nil {
		out.Abort(ctx)
		return nil, err
	}
	log.Info("subjects assigned", "subjects", rep.Subjects, "exported", rep.Exported, "cohorts", len(cohorts), "output", rep.Output)
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
