package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Event is one row of the events contract, for writing and row-wise reading.
// Nullable columns are pointers.
type Event struct {
	SubjectID string    `parquet:"subject_id,dict"`
	EventTime time.Time `parquet:"event_time,timestamp(microsecond)"`
	EventType string    `parquet:"event_type,dict"`
	ItemID    string    `parquet:"item_id,dict"`
	Category  *string   `parquet:"category,optional,dict"`
	Quantity  *int64    `parquet:"quantity,optional"`
	Value     *float64  `parquet:"value,optional"`
	Region    *string   `parquet:"region,optional,dict"`
}

// Consent is one row of the consent contract.
type Consent struct {
	SubjectID    string    `parquet:"subject_id,dict"`
	Purpose      *string   `parquet:"purpose,optional,dict"`
	Status       string    `parquet:"status,dict"`
	RecordedAt   time.Time `parquet:"recorded_at,timestamp(microsecond)"`
	Source       string    `parquet:"source,dict"`
	Jurisdiction *string   `parquet:"jurisdiction,optional,dict"`
	TCString     *string   `parquet:"tc_string,optional"`
}

// Erasure is one row of the erasure contract.
type Erasure struct {
	SubjectID   string    `parquet:"subject_id"`
	RequestedAt time.Time `parquet:"requested_at,timestamp(microsecond)"`
}

// CohortAssignment is one row of the cohort assignments output.
type CohortAssignment struct {
	SubjectID string  `parquet:"subject_id"`
	CohortID  int64   `parquet:"cohort_id"`
	Distance  float64 `parquet:"distance"`
	RunID     string  `parquet:"run_id,dict"`
}

// CatalogItem is one row of a product catalog (CatalogContract).
type CatalogItem struct {
	ItemID      string     `parquet:"item_id"`
	Category    string     `parquet:"category,dict"`
	Name        *string    `parquet:"name,optional"`
	Price       *float64   `parquet:"price,optional"`
	FirstListed *time.Time `parquet:"first_listed,optional,timestamp(microsecond)"`
}

// ItemFactor is one row of the item factors output.
type ItemFactor struct {
	ItemID string    `parquet:"item_id"`
	Bias   float64   `parquet:"bias"`
	Vector []float32 `parquet:"vector,list"`
}

// SubjectFeatures is one row of a prepared features table.
type SubjectFeatures struct {
	SubjectID string    `parquet:"subject_id"`
	Region    *string   `parquet:"region,optional"`
	Features  []float32 `parquet:"features,list"`
}

// Recommendation is one row of the recommendations output.
type Recommendation struct {
	SubjectID string  `parquet:"subject_id,dict"`
	Rank      int64   `parquet:"rank"`
	ItemID    string  `parquet:"item_id,dict"`
	Score     float64 `parquet:"score"`
}

// ExplainedRecommendation is a row of the recommendations a training job
// writes: a Recommendation and why. BecauseItems are up to three items of
// the subject's own history that raised the score most, BecauseShares
// their shares of everything the history added in its favour: columns
// beside the recommendations contract's, which readers may ignore.
type ExplainedRecommendation struct {
	SubjectID     string    `parquet:"subject_id,dict"`
	Rank          int64     `parquet:"rank"`
	ItemID        string    `parquet:"item_id,dict"`
	Score         float64   `parquet:"score"`
	BecauseItems  []string  `parquet:"because_items,list"`
	BecauseShares []float64 `parquet:"because_shares,list"`
}

// NonPersonalized is a row of a non-profiled recommendation list: the same
// for every customer, labelled by List.
type NonPersonalized struct {
	Rank   int64   `parquet:"rank"`
	ItemID string  `parquet:"item_id,dict"`
	Score  float64 `parquet:"score"`
	List   string  `parquet:"list,dict"`
}

// ReadRows reads the whole file row-wise into values of T, whose parquet
// tags name contract columns, calling fn with batches of up to 4096 rows (the
// slice is reused after fn returns). It suits small tables such as consent
// and erasure; large ones are read column-wise with a Scan.
func ReadRows[T any](ctx context.Context, f *ParquetFile, fn func([]T) error) (err error) {
	return readRows(ctx, f, -1, fn)
}

// ReadRowGroupRows is ReadRows for one row group (a unit of distributed
// work on a table with list columns, which a Scan cannot read).
func ReadRowGroupRows[T any](ctx context.Context, f *ParquetFile, rowGroup int, fn func([]T) error) error {
	if n := len(f.file.RowGroups()); rowGroup < 0 || rowGroup >= n {
		return fmt.Errorf("%s: %w: row group %d of %d", f.Name, ErrCorrupt, rowGroup, n)
	}
	return readRows(ctx, f, rowGroup, fn)
}

func readRows[T any](ctx context.Context, f *ParquetFile, rowGroup int, fn func([]T) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", f.Name, ErrCorrupt, r)
		}
	}()
	for rg, g := range f.file.Metadata().RowGroups {
		if rowGroup >= 0 && rg != rowGroup {
			continue
		}
		for c := range g.Columns {
			if err := checkChunk(f.obj, f.obj.Size(), &g.Columns[c].MetaData); err != nil {
				return fmt.Errorf("%s: row group %d: column %d: %w", f.Name, rg, c, err)
			}
		}
	}
	var r *parquet.GenericReader[T]
	if rowGroup >= 0 {
		r = parquet.NewGenericRowGroupReader[T](f.file.RowGroups()[rowGroup])
	} else {
		r = parquet.NewGenericReader[T](f.file)
	}
	defer r.Close()
	buf := make([]T, 4096)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Name, err)
		}
	}
}
