package lineage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/veil-privacy/veil/privacy/pseudonym"
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

// A keyed filter answers only with its key: its header holds no count of
// the tokens, the same tokens under another run or key set other bits,
// and the steward key (or the filter's own key) restores membership tests.
func TestKeyedBloom(t *testing.T) {
	steward, err := pseudonym.NewKey([]byte("0123456789abcdefghijklmnopqrstuvwxyz"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	b, err := NewKeyedBloom(ContributorsCapacity(n), 0.01, FilterKey(steward, "run-1"), steward.ID(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b.Add(fmt.Sprintf("tok_%d", i))
	}
	data, _ := b.MarshalBinary()
	if bytes.Contains(data[:64], binary.LittleEndian.AppendUint64(nil, n)) || ContributorsCapacity(n) != 4096 {
		t.Error("the header gives the number of tokens")
	}
	var c Bloom
	if err := c.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKey(nil, nil); !errors.Is(err, ErrBloomKey) {
		t.Errorf("keyed filter without a key: %v", err)
	}
	other, _ := pseudonym.NewKey([]byte("zyxwvutsrqponmlkjihgfedcba9876543210"))
	if err := c.SetKey(other, nil); !errors.Is(err, ErrBloomKey) {
		t.Errorf("keyed filter with another steward key: %v", err)
	}
	if err := c.SetKey(steward, nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !c.MayContain(fmt.Sprintf("tok_%d", i)) {
			t.Fatalf("false negative for tok_%d", i)
		}
	}
	// Without the key (here: an unkeyed reading of the same bits, or the
	// key of another run) members are found at about the empty rate.
	var guess Bloom
	guess.UnmarshalBinary(data)
	guess.key = FilterKey(steward, "run-2")
	found := 0
	for i := range n {
		if guess.MayContain(fmt.Sprintf("tok_%d", i)) {
			found++
		}
	}
	if found > n/20 {
		t.Errorf("another run's key finds %d of %d members", found, n)
	}
}
