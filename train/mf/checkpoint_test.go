package mf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"testing"
)

// TestCheckpointFormat: Marshal writes the VEILCKP2 layout byte for byte
// (magic, the header's length as a little-endian uint32, the JSON header,
// the five arrays as little-endian float64 bits, a SHA-256 of all that),
// here encoded independently with encoding/binary.Write, and
// UnmarshalCheckpoint gives back every bit, NaN payloads and -0 included.
func TestCheckpointFormat(t *testing.T) {
	nan := math.Float64frombits(0x7ff8_0000_dead_beef)
	c := &Checkpoint{RunID: "r", Plan: Plan{Steps: 4}, Dim: 2, NItems: 2, StepsDone: 3, AdamT: 3, Seen: 7, NormSum: 1.5,
		ItemIDs: []string{"a", "b"}, NoisySubjects: 12.25,
		P: []float64{1, -2, 3, 4, 5, 6}, M1: []float64{math.Copysign(0, -1), 1e-310, math.MaxFloat64, -1, 0.1, nan},
		M2: []float64{6, 5, 4, 3, 2, 1}, Prior: []float64{0.5, 0.25, 0, 0, 1, 1}, Released: []float64{9, 8, 7, 6, 5, math.Inf(-1)}}
	var want bytes.Buffer
	h, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want.WriteString("VEILCKP2")
	binary.Write(&want, binary.LittleEndian, uint32(len(h)))
	want.Write(h)
	for _, a := range [][]float64{c.P, c.M1, c.M2, c.Prior, c.Released} {
		for _, v := range a {
			binary.Write(&want, binary.LittleEndian, math.Float64bits(v))
		}
	}
	sum := sha256.Sum256(want.Bytes())
	want.Write(sum[:])
	got := c.Marshal()
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("Marshal: %d bytes differ from the format's %d", len(got), want.Len())
	}
	back, err := UnmarshalCheckpoint(got)
	if err != nil {
		t.Fatal(err)
	}
	bits := func(a []float64) []uint64 {
		out := make([]uint64, len(a))
		for i, v := range a {
			out[i] = math.Float64bits(v)
		}
		return out
	}
	for i, pair := range [][2][]float64{{c.P, back.P}, {c.M1, back.M1}, {c.M2, back.M2}, {c.Prior, back.Prior}, {c.Released, back.Released}} {
		if !slices.Equal(bits(pair[0]), bits(pair[1])) {
			t.Errorf("array %d: %v, want %v", i, pair[1], pair[0])
		}
	}
}

// BenchmarkCheckpointMarshal encodes the checkpoint of a 20,000-item model
// of d 32 (five arrays of 660,000 values).
func BenchmarkCheckpointMarshal(b *testing.B) {
	const items, d = 20000, 32
	c := &Checkpoint{Plan: Plan{Steps: 10}, Dim: d, NItems: items}
	for _, a := range []*[]float64{&c.P, &c.M1, &c.M2, &c.Prior, &c.Released} {
		*a = make([]float64, items*(d+1))
		for i := range *a {
			(*a)[i] = float64(i) * 0.001
		}
	}
	b.SetBytes(int64(5 * 8 * items * (d + 1)))
	b.ReportAllocs()
	for b.Loop() {
		c.Marshal()
	}
}
