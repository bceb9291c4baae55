package lineage

import (
	"fmt"
	"math"
	"testing"
)

func TestBloomNoFalseNegativesAndStatedRate(t *testing.T) {
	for _, fpr := range []float64{0.01, 0.001} {
		const n = 20000
		b, err := NewBloom(n, fpr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			b.Add(fmt.Sprintf("tok_%d", i))
		}
		for i := range n {
			if !b.MayContain(fmt.Sprintf("tok_%d", i)) {
				t.Fatalf("fpr %v: false negative for tok_%d", fpr, i)
			}
		}
		// The measured rate over 200k absent tokens is within 3 standard
		// errors of the stated one, and the stated one is near the target.
		const trials = 200000
		fp := 0
		for i := range trials {
			if b.MayContain(fmt.Sprintf("absent_%d", i)) {
				fp++
			}
		}
		got, want := float64(fp)/trials, b.FPR()
		se := math.Sqrt(want * (1 - want) / trials)
		if math.Abs(got-want) > 3*se+1e-5 {
			t.Errorf("fpr %v: measured %v, stated %v (se %v)", fpr, got, want, se)
		}
		if want > fpr*1.1 {
			t.Errorf("fpr %v: stated rate %v exceeds the target", fpr, want)
		}
	}
}

func TestBloomEncoding(t *testing.T) {
	b, _ := NewBloom(100, 0.01)
	b.Add("a")
	data, _ := b.MarshalBinary()
	var c Bloom
	if err := c.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !c.MayContain("a") || c.Len() != 1 || c.Bits() != b.Bits() || c.Hashes() != b.Hashes() {
		t.Fatalf("round trip lost the filter")
	}
	for _, bad := range [][]byte{nil, []byte("VEILBLM1"), data[:len(data)-1], append([]byte("XXXXXXXX"), data[8:]...)} {
		if err := c.UnmarshalBinary(bad); err == nil {
			t.Errorf("%q: decoded", bad)
		}
	}
	if _, err := NewBloom(10, 0); err == nil {
		t.Error("fpr 0 accepted")
	}
}

func FuzzBloomUnmarshal(f *testing.F) {
	b, _ := NewBloom(10, 0.1)
	b.Add("x")
	data, _ := b.MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Bloom
		if c.UnmarshalBinary(data) == nil {
			c.MayContain("x")
			c.FPR()
		}
	})
}
