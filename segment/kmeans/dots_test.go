package kmeans

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotsKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, dims := range [][2]int{{1, 1}, {3, 5}, {32, 64}, {17, 33}, {50, 100}} {
		d, k := dims[0], dims[1]
		centres := NewMatrix(k, d)
		for i := range centres.Data {
			centres.Data[i] = float32(r.NormFloat64())
		}
		b := newCentreBlock(k, d)
		b.load(centres)
		x := make([]float32, d)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		got := make([]float32, b.kp)
		want := make([]float32, b.kp)
		dots(got, x, b.ct, b.kp)
		dotsGeneric(want, x, b.ct, b.kp)
		for c := range k {
			if math.Abs(float64(got[c]-want[c])) > 1e-4*(1+math.Abs(float64(want[c]))) {
				t.Fatalf("d=%d k=%d centre %d: %v vs %v", d, k, c, got[c], want[c])
			}
		}
		var xx float32
		for _, v := range x {
			xx += v * v
		}
		// The pair kernel agrees with the single one.
		x2 := make([]float32, d)
		for i := range x2 {
			x2[i] = float32(r.NormFloat64())
		}
		p1, p2 := make([]float32, b.kp), make([]float32, b.kp)
		dots2(p1, p2, x, x2, b.ct, b.kp)
		w2 := make([]float32, b.kp)
		dotsGeneric(w2, x2, b.ct, b.kp)
		for c := range k {
			if math.Abs(float64(p1[c]-want[c])) > 1e-4*(1+math.Abs(float64(want[c]))) || math.Abs(float64(p2[c]-w2[c])) > 1e-4*(1+math.Abs(float64(w2[c]))) {
				t.Fatalf("d=%d k=%d centre %d: pair kernel %v %v vs %v %v", d, k, c, p1[c], p2[c], want[c], w2[c])
			}
		}
		a, d1, d2 := b.nearest2(x, xx, got)
		ga, gd1, gd2 := b.pickGeneric(xx, got)
		if a != ga || math.Abs(float64(d1-gd1)) > 1e-5 || math.Abs(float64(d2-gd2)) > 1e-5 {
			t.Errorf("d=%d k=%d: vector pick %d %v %v, generic %d %v %v", d, k, a, d1, d2, ga, gd1, gd2)
		}
		ea, ed1, _ := nearest2(x, centres)
		if a != ea || math.Abs(float64(d1-ed1)) > 1e-3*(1+float64(ed1)) {
			t.Errorf("d=%d k=%d: nearest %d (%v), direct %d (%v)", d, k, a, d1, ea, ed1)
		}
	}
}

func TestSqDistFast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, d := range []int{1, 7, 8, 16, 24, 32, 40, 64} {
		x, c := make([]float32, d), make([]float32, d)
		for i := range x {
			x[i], c[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		got, want := sqDistFast(x, c), sqDist(x, c)
		if math.Abs(float64(got-want)) > 1e-5*(1+float64(want)) {
			t.Errorf("d=%d: %v vs %v", d, got, want)
		}
	}
}

func BenchmarkNearestKernel(b *testing.B) {
	x, _ := blobs(4096, 32, 64, 2, 1)
	centres, _ := kmeansPlusPlus(ctx, x, 64, rand.New(rand.NewPCG(1, 2)), 1)
	blk := newCentreBlock(64, 32)
	blk.load(centres)
	scratch := make([]float32, blk.kp)
	b.Run("gemm", func(b *testing.B) {
		for b.Loop() {
			for i := range x.N {
				blk.nearest2(x.Row(i), 0, scratch)
			}
		}
		b.ReportMetric(float64(x.N*64*32)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	pair := make([]float32, 2*blk.kp)
	b.Run("gemm-pair", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i+1 < x.N; i += 2 {
				blk.nearest2Pair(x.Row(i), x.Row(i+1), 0, 0, pair)
			}
		}
		b.ReportMetric(float64(x.N*64*32)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			for i := range x.N {
				nearest2(x.Row(i), centres)
			}
		}
		b.ReportMetric(float64(x.N*64*32)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
}
