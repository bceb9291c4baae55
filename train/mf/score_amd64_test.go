package mf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestScorePanelsAVX512Bits: the AVX-512 kernel gives the AVX2 kernel's
// flags and stored tiles bit for bit, for odd and even panel counts (pairs
// and the last single panel), short and long d, and thresholds that flag
// some rows of some panels.
func TestScorePanelsAVX512Bits(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 12))
	for _, d := range []int{1, 2, 7, 32, 33} {
		for _, np := range []int{1, 2, 3, 5, 8} {
			u := make([]float32, d*kernelRows)
			v := make([]float32, np*d*panelWidth)
			bias := make([]float32, np*panelWidth)
			for _, x := range [][]float32{u, v, bias} {
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
			}
			var thr [kernelRows]float32
			for l := range thr {
				thr[l] = float32(r.NormFloat64() * math.Sqrt(float64(d)) * 2)
			}
			thr[0] = float32(math.Inf(-1)) // every panel stores
			var tiles [2][]float32
			var flags [2][]uint8
			for k, kernel := range []func([]float32, []uint8, []float32, []float32, []float32, int, *[kernelRows]float32){scorePanelsAVX512, scorePanelsAVX2} {
				tiles[k] = make([]float32, np*tileSize)
				flags[k] = make([]uint8, np)
				kernel(tiles[k], flags[k], u, v, bias, d, &thr)
			}
			if !slices.Equal(flags[0], flags[1]) {
				t.Fatalf("d=%d np=%d: flags %v, AVX2 %v", d, np, flags[0], flags[1])
			}
			for i := range tiles[0] {
				if math.Float32bits(tiles[0][i]) != math.Float32bits(tiles[1][i]) {
					t.Fatalf("d=%d np=%d: tile entry %d %v, AVX2 %v", d, np, i, tiles[0][i], tiles[1][i])
				}
			}
		}
	}
}

// TestKernelsGenerated: chol_kernels_amd64.s is what gen_kernels.go writes
// (run go generate ./train/mf after changing the generator).
func TestKernelsGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with go run")
	}
	out := filepath.Join(t.TempDir(), "k.s")
	if msg, err := exec.Command("go", "run", "gen_kernels.go", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("go run gen_kernels.go: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("chol_kernels_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("chol_kernels_amd64.s is not what gen_kernels.go writes: run go generate ./train/mf")
	}
}
