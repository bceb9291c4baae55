package lineage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

// Bloom is a keyed Bloom filter of subject tokens: it answers "may this
// subject have contributed?" with no false negatives and a stated
// false-positive rate, without storing the tokens themselves. Runs record
// one of their contributors so an erasure request can be traced to the
// outputs it affects.
//
// The bit positions of a token are HMAC-SHA-256 under the filter's key, so
// only who holds the key can test a token: someone who holds tokens (a
// marketing export lists them) and the filter but not the key learns
// nothing about membership. The header holds the filter's capacity (a
// public bound, see ContributorsCapacity), never the exact number of tokens.
type Bloom struct {
	capacity uint64 // the bound the filter is sized for
	m        uint64 // bits
	k        uint32 // hash functions
	keyID    string // KeyIDRandom, or the steward key's id; "" for v1
	run      string // the run whose subkey keys the filter
	key      []byte // HMAC key; nil for a v1 (unkeyed) filter
	bits     []uint64
	n        uint64 // tokens added in this process (never encoded)
}

// Encodings: v1 (unkeyed SHA-256, the token count in the header) is still
// read, so that the filters of earlier runs can be checked; v2 is written.
const (
	bloomMagicV1 = "VEILBLM1"
	bloomMagic   = "VEILBLM2"
)

// KeyIDRandom marks a filter keyed by a random key of its own, stored
// beside it (ContributorsKeyFile) because no steward key was configured.
const KeyIDRandom = "random00"

// Environment variables of the steward key (see LoadStewardKey).
const (
	StewardKeyFileEnv = "VEIL_STEWARD_KEY_FILE"
	StewardKeyEnv     = "VEIL_STEWARD_KEY"
)

// LoadStewardKey loads the data steward's key, which keys the contributors
// filters, as pseudonymization keys are loaded: from file (a config field)
// or else the file named by $VEIL_STEWARD_KEY_FILE (not readable by
// others), or else $VEIL_STEWARD_KEY (hex or base64). It returns nil and no
// error when none is configured. It is a key of its own, not the
// pseudonymization key: it lets the steward test tokens against filters.
func LoadStewardKey(file string, getenv func(string) string) (*pseudonym.Key, error) {
	if file == "" {
		file = getenv(StewardKeyFileEnv)
	}
	if file != "" {
		return pseudonym.LoadKeyFile(file)
	}
	if getenv(StewardKeyEnv) != "" {
		return pseudonym.LoadKeyEnv(StewardKeyEnv, getenv)
	}
	return nil, nil
}

// FilterKey derives the key of one run's filter from the steward key:
// HMAC-SHA-256(steward key, "veil contributors filter" NUL run id). Each
// run's filter has its own positions, so filters of different runs cannot
// be compared bit by bit to link their contributors.
func FilterKey(steward *pseudonym.Key, runID string) []byte {
	tok := steward.Clone().Token("veil contributors filter\x00" + runID)
	sum, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '_')+1:])
	if err != nil {
		panic("lineage: pseudonym token is not base64url: " + err.Error())
	}
	return sum
}

// NewBloom sizes an unkeyed v1 filter for n tokens at false-positive rate
// fpr. It is kept for reading and testing earlier filters; veil writes
// keyed filters (NewKeyedBloom).
func NewBloom(n int, fpr float64) (*Bloom, error) {
	m, k, err := bloomSize(n, fpr)
	if err != nil {
		return nil, err
	}
	return &Bloom{capacity: uint64(max(n, 1)), m: m, k: k, bits: make([]uint64, m/64)}, nil
}

// NewKeyedBloom sizes a filter for capacity tokens at false-positive rate
// fpr (0 < fpr < 1), keyed by key (32 bytes) with the key id and run id
// recorded in its header.
func NewKeyedBloom(capacity int, fpr float64, key []byte, keyID, runID string) (*Bloom, error) {
	if len(key) < 16 || len(keyID) != 8 || len(runID) > math.MaxUint16 {
		return nil, fmt.Errorf("bloom filter: key of %d bytes, key id %q, run id of %d bytes", len(key), keyID, len(runID))
	}
	m, k, err := bloomSize(capacity, fpr)
	if err != nil {
		return nil, err
	}
	return &Bloom{capacity: uint64(max(capacity, 1)), m: m, k: k, keyID: keyID, run: runID, key: append([]byte(nil), key...), bits: make([]uint64, m/64)}, nil
}

// bloomSize is m = -n ln fpr / ln²2 bits (a multiple of 64), k = m/n ln 2
// hashes.
func bloomSize(n int, fpr float64) (uint64, uint32, error) {
	if !(fpr > 0 && fpr < 1) {
		return 0, 0, fmt.Errorf("bloom filter: false-positive rate %v is not in (0, 1)", fpr)
	}
	nn := max(float64(n), 1)
	m := uint64(math.Ceil(-nn * math.Log(fpr) / (math.Ln2 * math.Ln2)))
	m = max(64, (m+63)/64*64)
	k := uint32(min(64, max(1, math.Round(float64(m)/nn*math.Ln2))))
	return m, k, nil
}

// ContributorsCapacity is the public bound a contributors filter of n
// subjects is sized for: n rounded up to a power of two, at least 1024. The
// filter's size then says only the order of magnitude of n.
func ContributorsCapacity(n int) int {
	if n <= 1024 {
		return 1024
	}
	return 1 << bits.Len(uint(n-1))
}

// hashes returns the two 64-bit halves of the token's keyed hash (the
// SHA-256 of v1 filters), combined as h1 + i*h2 (Kirsch and Mitzenmacher)
// for the k positions.
func (b *Bloom) hashes(token string) (uint64, uint64) {
	var s []byte
	if b.key != nil {
		mac := hmac.New(sha256.New, b.key)
		mac.Write([]byte(token))
		s = mac.Sum(nil)
	} else {
		sum := sha256.Sum256([]byte(token))
		s = sum[:]
	}
	return binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:16]) | 1
}

// Add records a token.
func (b *Bloom) Add(token string) {
	h1, h2 := b.hashes(token)
	for i := range uint64(b.k) {
		p := (h1 + i*h2) % b.m
		b.bits[p/64] |= 1 << (p % 64)
	}
	b.n++
}

// MayContain reports whether the token may have been added: false means
// it certainly was not. A keyed filter decoded without its key
// (UnmarshalBinary, then no SetKey) answers every token with an error.
func (b *Bloom) MayContain(token string) bool {
	h1, h2 := b.hashes(token)
	for i := range uint64(b.k) {
		p := (h1 + i*h2) % b.m
		if b.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// Len is the number of tokens added in this process (0 for a decoded
// filter: the encoding does not hold it).
func (b *Bloom) Len() int { return int(b.n) }

// Capacity is the bound the filter was sized for.
func (b *Bloom) Capacity() int { return int(b.capacity) }

// FPR is the false-positive rate at the filter's capacity,
// (1 - e^(-k·capacity/m))^k: an upper bound while at most capacity tokens
// are in it.
func (b *Bloom) FPR() float64 {
	return math.Pow(1-math.Exp(-float64(b.k)*float64(b.capacity)/float64(b.m)), float64(b.k))
}

// Bits and Hashes describe the filter's size.
func (b *Bloom) Bits() uint64   { return b.m }
func (b *Bloom) Hashes() uint32 { return b.k }

// KeyID is the id of the key the filter is keyed with: a steward key's
// id, KeyIDRandom, or "" for an unkeyed v1 filter.
func (b *Bloom) KeyID() string { return b.keyID }

// RunID is the run whose subkey keys the filter.
func (b *Bloom) RunID() string { return b.run }

// Keyed reports whether the filter needs a key to be tested.
func (b *Bloom) Keyed() bool { return b.keyID != "" }

// SetKey gives a decoded filter its key: the steward key (whose id must
// be the filter's), from which the run's subkey is derived, or for
// KeyIDRandom the filter's own key (ContributorsKeyFile).
func (b *Bloom) SetKey(steward *pseudonym.Key, own []byte) error {
	switch {
	case b.keyID == "":
		return nil
	case b.keyID == KeyIDRandom && len(own) >= 16:
		b.key = append([]byte(nil), own...)
	case b.keyID == KeyIDRandom:
		return fmt.Errorf("%w: the filter's own key is missing", ErrBloomKey)
	case steward == nil:
		return fmt.Errorf("%w: the filter is keyed by steward key %s, and no steward key is given ($%s)", ErrBloomKey, b.keyID, StewardKeyFileEnv)
	case steward.ID() != b.keyID:
		return fmt.Errorf("%w: the filter is keyed by steward key %s, not by the given %s", ErrBloomKey, b.keyID, steward.ID())
	default:
		b.key = FilterKey(steward, b.run)
	}
	return nil
}

// MarshalBinary encodes a keyed filter: magic VEILBLM2, the key id (8
// bytes), the run id (uint16 length, bytes), capacity, m (uint64), k
// (uint32), then the bit words, all little-endian. Neither the key nor the
// number of tokens is encoded.
func (b *Bloom) MarshalBinary() ([]byte, error) {
	if b.keyID == "" {
		out := make([]byte, 0, 28+len(b.bits)*8)
		out = append(out, bloomMagicV1...)
		out = binary.LittleEndian.AppendUint64(out, b.n)
		out = binary.LittleEndian.AppendUint64(out, b.m)
		out = binary.LittleEndian.AppendUint32(out, b.k)
		for _, w := range b.bits {
			out = binary.LittleEndian.AppendUint64(out, w)
		}
		return out, nil
	}
	out := make([]byte, 0, 38+len(b.run)+len(b.bits)*8)
	out = append(out, bloomMagic...)
	out = append(out, b.keyID...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(b.run)))
	out = append(out, b.run...)
	out = binary.LittleEndian.AppendUint64(out, b.capacity)
	out = binary.LittleEndian.AppendUint64(out, b.m)
	out = binary.LittleEndian.AppendUint32(out, b.k)
	for _, w := range b.bits {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out, nil
}

// ErrBloom reports a malformed filter encoding.
var ErrBloom = errors.New("malformed contributors filter")

// ErrBloomKey reports a keyed filter tested without its key.
var ErrBloomKey = errors.New("contributors filter key unavailable")

// UnmarshalBinary decodes what MarshalBinary wrote (v2, or v1 of earlier
// runs). A keyed filter needs SetKey before MayContain.
func (b *Bloom) UnmarshalBinary(data []byte) error {
	if len(data) >= 8 && string(data[:8]) == bloomMagicV1 {
		if len(data) < 28 {
			return fmt.Errorf("%w: short %s header", ErrBloom, bloomMagicV1)
		}
		n := binary.LittleEndian.Uint64(data[8:])
		return b.decodeBits(data[28:], binary.LittleEndian.Uint64(data[16:]), binary.LittleEndian.Uint32(data[24:]), func() {
			b.capacity, b.n, b.keyID, b.run, b.key = max(n, 1), n, "", "", nil
		})
	}
	if len(data) < 18 || string(data[:8]) != bloomMagic {
		return fmt.Errorf("%w: no %s header", ErrBloom, bloomMagic)
	}
	keyID := string(data[8:16])
	rl := int(binary.LittleEndian.Uint16(data[16:]))
	rest := data[18:]
	if len(rest) < rl+20 {
		return fmt.Errorf("%w: short %s header", ErrBloom, bloomMagic)
	}
	run := string(rest[:rl])
	rest = rest[rl:]
	capacity := binary.LittleEndian.Uint64(rest)
	if capacity == 0 {
		return fmt.Errorf("%w: capacity 0", ErrBloom)
	}
	return b.decodeBits(rest[20:], binary.LittleEndian.Uint64(rest[8:]), binary.LittleEndian.Uint32(rest[16:]), func() {
		b.capacity, b.n, b.keyID, b.run, b.key = capacity, 0, keyID, run, nil
	})
}

func (b *Bloom) decodeBits(words []byte, m uint64, k uint32, set func()) error {
	if m == 0 || m%64 != 0 || k == 0 || k > 64 || uint64(len(words)) != m/8 {
		return fmt.Errorf("%w: %d bits, %d hashes, %d bytes of bits", ErrBloom, m, k, len(words))
	}
	set()
	b.m, b.k = m, k
	b.bits = make([]uint64, m/64)
	for i := range b.bits {
		b.bits[i] = binary.LittleEndian.Uint64(words[i*8:])
	}
	return nil
}

// ContributorsFile is the name of the contributors filter in a steward
// report; ContributorsKeyFile that of its own key when no steward key was
// configured.
const (
	ContributorsFile    = "contributors.bloom"
	ContributorsKeyFile = "contributors.key"
)

// ContributorsFilter says how a run's contributors filter is keyed.
type ContributorsFilter struct {
	// RunID is the run; its filter key is derived from it.
	RunID string
	// FPR is the false-positive rate at the filter's capacity.
	FPR float64
	// Key is the steward key (LoadStewardKey). Nil: the filter gets a
	// random key of its own, written beside it as ContributorsKeyFile, so
	// the filter is exactly as protected as the steward report holding it.
	Key *pseudonym.Key
}

// WriteContributors writes the keyed filter of the subjects whose data
// shaped a run's outputs as ContributorsFile into out, which must be a
// steward report (or an output of no class), never a release; it is sized
// for ContributorsCapacity(len(subjects)).
func WriteContributors(ctx context.Context, out *dataset.Output, subjects []string, f ContributorsFilter) (Contributors, error) {
	if out.Class() == dataset.ClassRelease {
		return Contributors{}, fmt.Errorf("writing the contributors filter into %s: it is a release; the filter goes into the steward report", out.Location())
	}
	key, keyID := []byte(nil), KeyIDRandom
	if f.Key != nil {
		key, keyID = FilterKey(f.Key, f.RunID), f.Key.ID()
	} else {
		key = make([]byte, 32)
		rand.Read(key)
	}
	b, err := NewKeyedBloom(ContributorsCapacity(len(subjects)), f.FPR, key, keyID, f.RunID)
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
	if f.Key == nil {
		if err := out.PutFile(ctx, ContributorsKeyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0); err != nil {
			return Contributors{}, err
		}
	}
	url, _ := out.FileLocation(ContributorsFile)
	return Contributors{Filter: url, Capacity: b.Capacity(), FPR: b.FPR(), Bits: b.Bits(), Hashes: b.Hashes(), KeyID: keyID}, nil
}

// KeyLocation is where a filter written with a random key of its own keeps
// that key: beside it, contributors-WRITEID.key.
func KeyLocation(filter string) string {
	return strings.TrimSuffix(filter, ".bloom") + ".key"
}
