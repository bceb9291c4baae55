package segment

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment/kmeans"
)

// A prepared features table holds every consented subject's raw features
// for one logical date, at OUTPUT/dt=DATE: shards part-NNNNN.parquet
// (subjects split by a hash of their token, sorted within a shard; the
// subject_features contract), feature_names.json and prepare_report.json,
// committed together by the manifest. veil builds it on one machine (veil
// segment prepare) or on a Beam runner (veil-beam prepare); both write the
// same rows.
const (
	FeatureNamesFile  = "feature_names.json"
	PrepareReportFile = "prepare_report.json"
	// DefaultShards is the number of files of a prepared table.
	DefaultShards = 8
)

// PrepareReport says what preparing features read, kept and wrote.
type PrepareReport struct {
	LogicalDate string         `json:"logical_date"`
	Events      string         `json:"events"`
	Output      string         `json:"output"`
	Engine      string         `json:"engine"` // veil, or beam and the runner
	Shards      int            `json:"shards"`
	Subjects    int            `json:"subjects"`
	EventsUsed  int64          `json:"events_used"`
	Bounded     int            `json:"subjects_bounded"`
	Features    FeatureConfig  `json:"features"`
	Filter      privacy.Report `json:"filter"`
	Seconds     float64        `json:"seconds"`
}

// Shard returns the shard of a subject among n (dataset.Shard).
func Shard(subject string, n int) int { return dataset.Shard(subject, n) }

// ShardFile names shard i.
func ShardFile(i int) string { return fmt.Sprintf("part-%05d.parquet", i) }

// WriteShard writes the rows of shard i (in any order; sorted by subject
// here) into out.
func WriteShard(ctx context.Context, out *dataset.Output, i int, rows []dataset.SubjectFeatures) error {
	slices.SortFunc(rows, func(a, b dataset.SubjectFeatures) int { return strings.Compare(a.SubjectID, b.SubjectID) })
	return dataset.PutParquet(ctx, out, ShardFile(i), rows)
}

// WritePreparedMeta writes the feature names and the report into out.
func WritePreparedMeta(ctx context.Context, out *dataset.Output, names []Feature, rep *PrepareReport) error {
	for _, f := range []struct {
		name string
		v    any
	}{{FeatureNamesFile, names}, {PrepareReportFile, rep}} {
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

// Filtered is a segmentation job's consent filter over its events.
type Filtered = privacy.Filtered

// OpenFiltered opens a segmentation job's inputs and builds its consent
// index and filter (for segmentation; exports also need marketing). The
// filter is restricted to the job's jurisdictions, if any.
func OpenFiltered(ctx context.Context, cfg Config, day time.Time, opt dataset.URLOptions) (*Filtered, error) {
	return privacy.OpenFiltered(ctx, cfg.JobTables, []string{privacy.Segmentation, privacy.Marketing}, []string{privacy.Segmentation}, featureColumns, day, opt)
}

// newFiltered builds the consent index and filter of opened inputs.
func newFiltered(ctx context.Context, cfg Config, in *privacy.JobInputs, day time.Time) (*Filtered, error) {
	return privacy.NewFiltered(ctx, cfg.JobTables, in, []string{privacy.Segmentation}, featureColumns, day)
}

// PreparedLocation returns the store and prefix of a date's prepared
// table under the URL.
func PreparedLocation(ctx context.Context, outURL string, day time.Time, opt dataset.URLOptions) (dataset.Store, string, error) {
	return open.DatePartition(ctx, outURL, day, opt)
}

// PreparedOutput starts the output of a prepared table for a date under
// the URL.
func PreparedOutput(ctx context.Context, outURL string, day time.Time, producer string, opt dataset.URLOptions) (*dataset.Output, error) {
	s, prefix, err := PreparedLocation(ctx, outURL, day, opt)
	if err != nil {
		return nil, err
	}
	return dataset.NewOutput(ctx, s, prefix, dataset.SubjectFeaturesContract, producer)
}

// Prepare builds the features of a segmentation job on this machine and
// writes them as a prepared table under outURL (see FeatureNamesFile).
func Prepare(ctx context.Context, cfg Config, day time.Time, outURL string, shards int, opt dataset.URLOptions, log *slog.Logger) (*PrepareReport, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if shards < 1 || shards > 100000 {
		return nil, fmt.Errorf("%w: shards %d must be in [1, 100000]", ErrConfig, shards)
	}
	// The events' own identity, never the job's budget.dataset.
	identity, err := release.TableIdentity(ctx, cfg.Events, opt)
	if err != nil {
		return nil, err
	}
	f, err := OpenFiltered(ctx, cfg, day, opt)
	if err != nil {
		return nil, err
	}
	if err := f.GuardPII(ctx); err != nil {
		return nil, err
	}
	workers := cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0))
	feats, err := BuildFeatures(ctx, f.Inputs.Policy, f.Filter, f.Inputs.Events, cfg.Features, day, workers)
	if err != nil {
		return nil, err
	}
	out, err := PreparedOutput(ctx, outURL, day, "veil segment prepare", opt)
	if err != nil {
		return nil, err
	}
	// Releases over the table charge the budget of the events.
	out.SetIdentity(identity)
	rep := &PrepareReport{LogicalDate: day.UTC().Format(time.DateOnly), Events: cfg.Events, Output: out.Location(), Engine: "veil",
		Shards: shards, Subjects: len(feats.Subjects), EventsUsed: feats.Events, Bounded: feats.Bounded, Features: cfg.Features, Filter: feats.Filter}
	err = writePrepared(ctx, out, feats, shards, rep, start)
	if err != nil {
		out.Abort(ctx)
		return nil, err
	}
	// Exact counts at debug level only: a prepared table is no DP release,
	// but DP pipelines prepare too, and scheduler logs keep info.
	log.Info("features prepared", "output", rep.Output)
	log.Debug("features prepared (exact counts)", "subjects", rep.Subjects, "events", rep.EventsUsed)
	return rep, nil
}

func writePrepared(ctx context.Context, out *dataset.Output, feats *Features, shards int, rep *PrepareReport, start time.Time) error {
	parts := make([][]dataset.SubjectFeatures, shards)
	for i, s := range feats.Subjects {
		row := dataset.SubjectFeatures{SubjectID: s, Features: feats.Raw.Row(i)}
		if r := feats.Regions[i]; r != "" {
			row.Region = &r
		}
		k := Shard(s, shards)
		parts[k] = append(parts[k], row)
	}
	for i, rows := range parts {
		if err := WriteShard(ctx, out, i, rows); err != nil {
			return err
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := WritePreparedMeta(ctx, out, feats.Names, rep); err != nil {
		return err
	}
	_, err := out.Commit(ctx, map[string]string{"logical_date": rep.LogicalDate, "job": "segment-prepare", "engine": rep.Engine})
	return err
}

// PreparedMeta reads what a prepared table (the dt=DATE prefix) says about
// itself: its feature names, its report and the keys of its shards.
func PreparedMeta(ctx context.Context, ref dataset.Ref) ([]Feature, *PrepareReport, []string, error) {
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		return nil, nil, nil, err
	}
	if m.Contract != dataset.SubjectFeaturesContract.Name {
		return nil, nil, nil, fmt.Errorf("%w: %s/%s holds %q, not a prepared table", ErrInput, ref.Store.Location(), ref.Key, m.Contract)
	}
	var names []Feature
	var rep PrepareReport
	for _, f := range []struct {
		name string
		v    any
	}{{FeatureNamesFile, &names}, {PrepareReportFile, &rep}} {
		mf, ok := m.Find(f.name)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%w: %s/%s has no %s", ErrInput, ref.Store.Location(), ref.Key, f.name)
		}
		b, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, mf.Key))
		if err != nil {
			return nil, nil, nil, err
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %s: %v", ErrInput, f.name, err)
		}
	}
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	return names, &rep, keys, err
}

// ReadPrepared reads a prepared table (the dt=DATE prefix): its features,
// subjects in token order and standardized, and its report.
func ReadPrepared(ctx context.Context, ref dataset.Ref) (*Features, *PrepareReport, error) {
	names, rep, keys, err := PreparedMeta(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	var rows []dataset.SubjectFeatures
	for _, k := range keys {
		pf, err := dataset.OpenParquet(ctx, ref.Store, k, dataset.SubjectFeaturesContract)
		if err != nil {
			return nil, nil, err
		}
		err = dataset.ReadRows(ctx, pf, func(rs []dataset.SubjectFeatures) error {
			for _, r := range rs {
				if len(r.Features) != len(names) {
					return fmt.Errorf("%w: %s: subject has %d features, want %d", ErrInput, k, len(r.Features), len(names))
				}
				r.Features = slices.Clone(r.Features)
				rows = append(rows, r)
			}
			return nil
		})
		pf.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("%w: %s/%s holds no subjects", ErrInput, ref.Store.Location(), ref.Key)
	}
	slices.SortFunc(rows, func(a, b dataset.SubjectFeatures) int { return strings.Compare(a.SubjectID, b.SubjectID) })
	f := &Features{Names: names, Raw: kmeans.NewMatrix(len(rows), len(names)), Events: rep.EventsUsed, Bounded: rep.Bounded, Filter: rep.Filter}
	for i, r := range rows {
		f.Subjects = append(f.Subjects, r.SubjectID)
		region := ""
		if r.Region != nil {
			region = *r.Region
		}
		f.Regions = append(f.Regions, region)
		copy(f.Raw.Row(i), r.Features)
	}
	f.standardize()
	return f, rep, nil
}
