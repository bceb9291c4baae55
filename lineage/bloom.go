package lineage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/veil-privacy/veil/dataset"
)

// Bloom is a Bloom filter of subject tokens: it answers "may this subject
// have contributed?" with no false negatives and a stated false-positive
// rate, without storing the tokens themselves. Runs record one of their
// contributors so an erasure request can be traced to the outputs it
// affects.
type Bloom struct {
	n    uint64 // tokens added
	m    uint64 // bits
	k    uint32 // hash functions
	bits []uint64
}

// bloomMagic starts the encoding of a Bloom filter.
const bloomMagic = "VEILBLM1"

// NewBloom sizes a filter for n tokens at false-positive rate fpr
// (0 < fpr < 1): m = -n ln fpr / ln²2 bits, k = m/n ln 2 hashes.
func NewBloom(n int, fpr float64) (*Bloom, error) {
	if !(fpr > 0 && fpr < 1) {
		return nil, fmt.Errorf("bloom filter: false-positive rate %v is not in (0, 1)", fpr)
	}
	nn := max(float64(n), 1)
	m := uint64(math.Ceil(-nn * math.Log(fpr) / (math.Ln2 * math.Ln2)))
	m = max(64, (m+63)/64*64)
	k := uint32(max(1, math.Round(float64(m)/nn*math.Ln2)))
	return &Bloom{m: m, k: k, bits: make([]uint64, m/64)}, nil
}

// hashes returns the two 64-bit halves of the token's SHA-256, combined
// as h1 + i*h2 (Kirsch and Mitzenmacher) for the k positions.
func hashes(token string) (uint64, uint64) {
	s := sha256.Sum256([]byte(token))
	return binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:16]) | 1
}

// Add records a token.
func (b *Bloom) Add(token string) {
	h1, h2 := hashes(token)
	for i := range uint64(b.k) {
		p := (h1 + i*h2) % b.m
		b.bits[p/64] |= 1 << (p % 64)
	}
	b.n++
}

// MayContain reports whether the token may have been added: false means
// it certainly was not.
func (b *Bloom) MayContain(token string) bool {
	h1, h2 := hashes(token)
	for i := range uint64(b.k) {
		p := (h1 + i*h2) % b.m
		if b.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// Len is the number of tokens added.
func (b *Bloom) Len() int { return int(b.n) }

// FPR is the false-positive rate for the tokens added:
// (1 - e^(-kn/m))^k.
func (b *Bloom) FPR() float64 {
	return math.Pow(1-math.Exp(-float64(b.k)*float64(b.n)/float64(b.m)), float64(b.k))
}

// Bits and Hashes describe the filter's size.
func (b *Bloom) Bits() uint64   { return b.m }
func (b *Bloom) Hashes() uint32 { return b.k }

// MarshalBinary encodes the filter: magic, n, m, k, then the bit words,
// all little-endian.
func (b *Bloom) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, 28+len(b.bits)*8)
	out = append(out, bloomMagic...)
	out = binary.LittleEndian.AppendUint64(out, b.n)
	out = binary.LittleEndian.AppendUint64(out, b.m)
	out = binary.LittleEndian.AppendUint32(out, b.k)
	for _, w := range b.bits {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out, nil
}

// ErrBloom reports a malformed filter encoding.
var ErrBloom = errors.New("malformed contributors filter")

// UnmarshalBinary decodes what MarshalBinary wrote.
func (b *Bloom) UnmarshalBinary(data []byte) error {
	if len(data) < 28 || string(data[:8]) != bloomMagic {
		return fmt.Errorf("%w: no %s header", ErrBloom, bloomMagic)
	}
	n := binary.LittleEndian.Uint64(data[8:])
	m := binary.LittleEndian.Uint64(data[16:])
	k := binary.LittleEndian.Uint32(data[24:])
	words := data[28:]
	if m == 0 || m%64 != 0 || k == 0 || k > 64 || uint64(len(words)) != m/8 {
		return fmt.Errorf("%w: %d bits, %d hashes, %d bytes of bits", ErrBloom, m, k, len(words))
	}
	b.n, b.m, b.k = n, m, k
	b.bits = make([]uint64, m/64)
	for i := range b.bits {
		b.bits[i] = binary.LittleEndian.Uint64(words[i*8:])
	}
	return nil
}

// ContributorsFile is the name of the contributors filter in an output.
const ContributorsFile = "contributors.bloom"

// WriteContributors writes the filter of the subjects whose data shaped an
// output into it as ContributorsFile, and describes it.
func WriteContributors(ctx context.Context, out *dataset.Output, subjects []string, fpr float64) (Contributors, error) {
	b, err := NewBloom(len(subjects), fpr)
	if err != nil {
		return Contributors{}, err
	}
	for _, s := range subjects {
		b.Add(s)
	}
	data, _ := b.MarshalBinary()
	if err := out.PutFile(ctx, ContributorsFile, data, 0); err != nil {
		return Contributors{}, err
	}
	url, _ := out.FileLocation(ContributorsFile)
	return Contributors{Filter: url, Subjects: b.Len(), FPR: b.FPR(), Bits: b.Bits(), Hashes: b.Hashes()}, nil
}
