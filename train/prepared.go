package train

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
	"github.com/veil-privacy/veil/train/mf"
)

// A prepared interactions table holds every consented subject's
// interactions for one logical date, at OUTPUT/dt=DATE: shards
// part-NNNNN.parquet (the interactions contract, one row per subject and
// item: the summed weight and the latest time; subjects split by
// dataset.Shard, rows sorted by subject and item) and prepare_report.json,
// committed by the manifest. `veil train prepare` writes it on one
// machine, `veil-beam prepare-interactions` on a Beam runner; `veil train
// mf --in OUT/dt=DATE` trains on it. Contribution bounding
// (max_interactions) stays with training, after the holdout split: the
// table holds each subject's interactions together, which is what bounding
// needs.

// InteractionsReportFile is the report of a prepared interactions table.
const InteractionsReportFile = "prepare_report.json"

// InteractionRow is one row of a prepared interactions table.
type InteractionRow struct {
	SubjectID string    `parquet:"subject_id,dict"`
	ItemID    string    `parquet:"item_id,dict"`
	EventTime time.Time `parquet:"event_time,timestamp(microsecond)"`
	Weight    float64   `parquet:"weight"`
}

// InteractionsReport says what preparing interactions read and wrote.
type InteractionsReport struct {
	LogicalDate  string         `json:"logical_date"`
	Events       string         `json:"events"`
	Output       string         `json:"output"`
	Engine       string         `json:"engine"`
	Shards       int            `json:"shards"`
	Subjects     int64          `json:"subjects"`
	Interactions int64          `json:"interactions"`
	Config       Interactions   `json:"interactions_config"`
	Filter       privacy.Report `json:"filter"`
	Seconds      float64        `json:"seconds"`
}

// InteractionDecoder turns the kept event rows of a batch into
// interactions: events of a weighted type inside the job's window.
type InteractionDecoder struct {
	weights  map[string]float64
	from, to int64 // µs
}

// NewInteractionDecoder checks the settings and returns their decoder.
func NewInteractionDecoder(ic Interactions, day time.Time) (*InteractionDecoder, error) {
	if err := ic.Validate(); err != nil {
		return nil, err
	}
	end := day.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	return &InteractionDecoder{weights: ic.EventWeights, from: end.AddDate(0, 0, -ic.WindowDays).UnixMicro(), to: end.UnixMicro()}, nil
}

// Columns returns the event columns the decoder reads besides subject_id
// and event_time.
func (d *InteractionDecoder) Columns() []string { return []string{"event_type", "item_id"} }

// Decode calls fn for every interaction of the batch with the subject's
// index in the batch's subject dictionary, the item, the weight and the
// time (µs).
func (d *InteractionDecoder) Decode(b *dataset.Batch, keep []bool, fn func(subj int32, item string, w float64, at int64)) {
	items := b.Column("item_id").Str.Dict
	d.DecodeIndexed(b, keep, func(subj, item int32, w float64, at int64) { fn(subj, items[item], w, at) })
}

// DecodeIndexed is Decode with the item as an index into the batch's item
// dictionary.
func (d *InteractionDecoder) DecodeIndexed(b *dataset.Batch, keep []bool, fn func(subj, item int32, w float64, at int64)) {
	subj, item, typ := b.Column("subject_id").Str, b.Column("item_id").Str, b.Column("event_type").Str
	at := b.Column("event_time").Int
	weight := make([]float64, len(typ.Dict))
	for k, t := range typ.Dict {
		weight[k] = d.weights[t]
	}
	for i, x := range subj.Index {
		if !keep[i] || at[i] < d.from || at[i] >= d.to || typ.Index[i] < 0 || item.Index[i] < 0 {
			continue
		}
		if w := weight[typ.Index[i]]; w > 0 {
			fn(x, item.Index[i], w, at[i])
		}
	}
}

// Filtered is a training job's consent filter over its events.
type Filtered = privacy.Filtered

// OpenFiltered opens a training job's inputs and builds its consent index
// and filter (restricted to its jurisdictions, if any).
func OpenFiltered(ctx context.Context, cfg JobConfig, day time.Time, opt dataset.URLOptions) (*Filtered, error) {
	return privacy.OpenFiltered(ctx, cfg.JobTables, Purposes, Purposes, []string{"event_type", "item_id"}, day, opt)
}

// InteractionsLocation returns the store and prefix of a date's prepared
// interactions under the URL.
func InteractionsLocation(ctx context.Context, outURL string, day time.Time, opt dataset.URLOptions) (dataset.Store, string, error) {
	return open.DatePartition(ctx, outURL, day, opt)
}

// InteractionsOutput starts the output of a date's prepared interactions.
func InteractionsOutput(ctx context.Context, outURL string, day time.Time, producer string, opt dataset.URLOptions) (*dataset.Output, error) {
	s, prefix, err := InteractionsLocation(ctx, outURL, day, opt)
	if err != nil {
		return nil, err
	}
	return dataset.NewOutput(ctx, s, prefix, InteractionsContract, producer)
}

// InteractionsShardFile names shard i.
func InteractionsShardFile(i int) string { return fmt.Sprintf("part-%05d.parquet", i) }

// WriteInteractionsShard writes the rows of shard i, sorted by subject and
// item here.
func WriteInteractionsShard(ctx context.Context, out *dataset.Output, i int, rows []InteractionRow) error {
	slices.SortFunc(rows, func(a, b InteractionRow) int {
		return cmp.Or(strings.Compare(a.SubjectID, b.SubjectID), strings.Compare(a.ItemID, b.ItemID))
	})
	return dataset.PutParquet(ctx, out, InteractionsShardFile(i), rows)
}

// writeInteractionShards writes d's interactions as the shards of a
// prepared table, one shard's rows in memory at a time, and adds their
// count to n. d's subjects and items are sorted by id (Builder.Data), so
// the rows come out in WriteInteractionsShard's order without comparing
// strings: subjects in d's order, each one's interactions by item index.
func writeInteractionShards(ctx context.Context, out *dataset.Output, d *mf.Data, shards int, n *int64) error {
	members := make([][]int32, shards) // subjects of each shard, in d's order
	size := make([]int, shards)
	for s, id := range d.Subjects {
		k := dataset.Shard(id, shards)
		members[k] = append(members[k], int32(s))
		size[k] += len(d.Rows[s])
	}
	var byItem []mf.Interaction
	for k, subjects := range members {
		rows := make([]InteractionRow, 0, size[k])
		for _, s := range subjects {
			id := d.Subjects[s]
			byItem = append(byItem[:0], d.Rows[s]...)
			slices.SortFunc(byItem, func(a, b mf.Interaction) int { return cmp.Compare(a.Item, b.Item) })
			for _, r := range byItem {
				rows = append(rows, InteractionRow{SubjectID: id, ItemID: d.Items[r.Item], EventTime: time.Unix(r.Time, 0).UTC(), Weight: float64(r.Weight)})
			}
		}
		if err := dataset.PutParquet(ctx, out, InteractionsShardFile(k), rows); err != nil {
			return err
		}
		*n += int64(len(rows))
	}
	return nil
}

// WriteInteractionsReport writes the report into the output.
func WriteInteractionsReport(ctx context.Context, out *dataset.Output, rep *InteractionsReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return out.PutFile(ctx, InteractionsReportFile, append(b, '\n'), 0)
}

// PrepareInteractions reads a training job's consented interactions on
// this machine and writes them as a prepared table under outURL.
func PrepareInteractions(ctx context.Context, cfg JobConfig, day time.Time, outURL string, shards int, opt dataset.URLOptions, log *slog.Logger) (*InteractionsReport, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if shards < 1 || shards > 100000 {
		return nil, fmt.Errorf("%w: shards %d must be in [1, 100000]", mf.ErrConfig, shards)
	}
	if err := cfg.Interactions.Validate(); err != nil {
		return nil, err
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
	d, filtered, err := LoadEvents(ctx, f.Inputs.Policy, f.Filter, f.Inputs.Events, cfg.Interactions, day, cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, err
	}
	out, err := InteractionsOutput(ctx, outURL, day, "veil train prepare", opt)
	if err != nil {
		return nil, err
	}
	// Releases over the table (veil train mf --in) charge the events' budget.
	out.SetIdentity(identity)
	rep := &InteractionsReport{LogicalDate: day.UTC().Format(time.DateOnly), Events: cfg.Events, Output: out.Location(), Engine: "veil",
		Shards: shards, Subjects: int64(len(d.Subjects)), Config: cfg.Interactions, Filter: filtered}
	err = func() error {
		if err := writeInteractionShards(ctx, out, d, shards, &rep.Interactions); err != nil {
			return err
		}
		rep.Seconds = time.Since(start).Seconds()
		if err := WriteInteractionsReport(ctx, out, rep); err != nil {
			return err
		}
		_, err := out.Commit(ctx, map[string]string{"logical_date": rep.LogicalDate, "job": "train-prepare", "engine": rep.Engine})
		return err
	}()
	if err != nil {
		out.Abort(ctx)
		return nil, err
	}
	// Exact counts at debug level only: a prepared table is no DP release,
	// but DP pipelines prepare too, and scheduler logs keep info.
	log.Info("interactions prepared", "output", rep.Output)
	log.Debug("interactions prepared (exact counts)", "subjects", rep.Subjects, "interactions", rep.Interactions)
	return rep, nil
}
