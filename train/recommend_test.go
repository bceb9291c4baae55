package train

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/train/mf"
)

// TestRecommendationsRankTheModelsItems: a subject's list ranks every item
// of the released model (the catalog's), also one that nobody touched in
// the window; ranking only the data's items would let one subject's list
// reveal which items other subjects touched.
func TestRecommendationsRankTheModelsItems(t *testing.T) {
	m := &mf.Model{Dim: 1, Items: []string{"a", "b", "untouched"}, Lambda: 1, Unobserved: 0.05,
		P: []float64{0.1, 0.1, 0.1, 0.2, 0.1, 0.9}} // item j: factor, bias
	d := &mf.Data{Subjects: []string{"s"}, Items: []string{"a", "b"}, Rows: [][]mf.Interaction{{{Item: 0, Weight: 1}}}}
	recs, _, err := recommendFor(d, m, []int{0}, 2, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if recs.Len() != 2 || recs.at(0).ItemID != "untouched" || recs.at(1).ItemID != "b" {
		t.Errorf("recommendations %+v, want untouched then b (a is the subject's own)", recs.all())
	}
}

// TestPutRecommendationsChunked: recommendations.parquet written a chunk at
// a time is byte for byte the file of all rows written at once (more rows
// than one chunk, with and without reasons).
func TestPutRecommendationsChunked(t *testing.T) {
	ctx := context.Background()
	items := []string{"a", "b", "c", "d", "e"}
	const n = 40000
	recs := recList{rows: make([]recRow, n), subjects: make([]string, n/20), items: items}
	for s := range recs.subjects {
		recs.subjects[s] = fmt.Sprintf("s%05d", s)
	}
	because := make([][]mf.Contribution, n)
	for i := range recs.rows {
		recs.rows[i] = recRow{subject: int32(i / 20), rank: int32(i%20 + 1), item: int32(i % 5), score: 1 / float64(i+1)}
		because[i] = []mf.Contribution{{Item: int32(i % 5), Value: 0.5}, {Item: int32((i + 2) % 5), Value: 0.25}}[:i%3]
	}
	for _, why := range [][][]mf.Contribution{because, nil} {
		file := func(put func(*dataset.Output) error) []byte {
			store := dataset.NewMemStore("m")
			out, err := dataset.NewOutput(ctx, store, "run", nil, "test")
			if err != nil {
				t.Fatal(err)
			}
			if err := put(out); err != nil {
				t.Fatal(err)
			}
			man, err := out.Commit(ctx, nil)
			if err != nil || len(man.Files) != 1 {
				t.Fatalf("commit: %v, %v", man, err)
			}
			obj, err := store.Open(ctx, dataset.Join("run", man.Files[0].Key))
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			b, err := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		chunked := file(func(o *dataset.Output) error { return putRecommendations(ctx, o, recs, why) })
		whole := file(func(o *dataset.Output) error {
			return dataset.PutParquet(ctx, o, RecommendationsFile, explained(recs, why))
		})
		if !bytes.Equal(chunked, whole) {
			t.Fatalf("reasons %v: chunked file (%d bytes) differs from the whole (%d bytes)", why != nil, len(chunked), len(whole))
		}
	}
}
