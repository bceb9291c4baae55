package kmeans

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Source yields a matrix one piece at a time, so that mini-batch k-means
// never holds all of it: a Parquet file row group by row group.
type Source interface {
	Pieces() int
	Dims() int
	Read(ctx context.Context, piece int, dst *Matrix) (*Matrix, error)
}

// MiniBatch configures mini-batch k-means (Sculley 2010).
type MiniBatch struct {
	K         int
	BatchSize int // points per update (default 1024)
	Epochs    int // passes over the data (default 2)
	Seed      uint64
}

// FitStream runs mini-batch k-means over a source: centres seeded by
// k-means++ on the first piece, then every piece, in a random order per
// epoch, is cut into shuffled batches; each point moves its nearest centre
// towards it with a per-centre learning rate of 1/count. A last pass
// computes the inertia. Memory is one piece and the centres.
func (m *MiniBatch) FitStream(ctx context.Context, src Source) (*Result, error) {
	if m.BatchSize == 0 {
		m.BatchSize = 1024
	}
	if m.Epochs == 0 {
		m.Epochs = 2
	}
	if m.K < 1 || m.BatchSize < 1 || m.Epochs < 1 || src.Pieces() < 1 {
		return nil, fmt.Errorf("%w: mini-batch k-means needs k, batch size and epochs of at least 1 and some data", ErrConfig)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(m.Seed, 0x3b))
	var piece *Matrix
	var err error
	if piece, err = src.Read(ctx, 0, piece); err != nil {
		return nil, err
	}
	if piece.N < m.K {
		return nil, fmt.Errorf("%w: the first piece has %d points, fewer than k = %d", ErrConfig, piece.N, m.K)
	}
	centres, err := kmeansPlusPlus(ctx, piece, m.K, rng, 1)
	if err != nil {
		return nil, err
	}
	counts := make([]float64, m.K)
	blk := newCentreBlock(m.K, src.Dims())
	scratch := make([]float32, blk.kp)
	batches := 0
	for range m.Epochs {
		for _, p := range rng.Perm(src.Pieces()) {
			if piece, err = src.Read(ctx, p, piece); err != nil {
				return nil, err
			}
			order := rng.Perm(piece.N)
			for lo := 0; lo < len(order); lo += m.BatchSize {
				batch := order[lo:min(lo+m.BatchSize, len(order))]
				blk.load(centres)
				labels := make([]int32, len(batch))
				for b, i := range batch {
					row := piece.Row(i)
					var xx float32
					for _, v := range row {
						xx += v * v
					}
					labels[b], _, _ = blk.nearest2(row, xx, scratch)
				}
				for b, i := range batch {
					c := labels[b]
					counts[c]++
					lr := float32(1 / counts[c])
					crow := centres.Row(int(c))
					for t, v := range piece.Row(i) {
						crow[t] += lr * (v - crow[t])
					}
				}
				batches++
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	r := &Result{Centroids: centres, Sizes: make([]int, m.K), Iterations: batches}
	blk.load(centres)
	for p := range src.Pieces() {
		if piece, err = src.Read(ctx, p, piece); err != nil {
			return nil, err
		}
		for i := range piece.N {
			row := piece.Row(i)
			a, _, _ := blk.nearest2(row, 0, scratch)
			r.Sizes[a]++
			r.Inertia += SquaredDistance(row, centres.Row(int(a)))
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}
