package privacy

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// TCString is the decoded core segment of an IAB TCF v2.x TC string
// (IAB Tech Lab, "Consent string and vendor list formats v2", core segment).
type TCString struct {
	Version           int
	Created           time.Time
	LastUpdated       time.Time
	CMPID             int
	CMPVersion        int
	ConsentScreen     int
	ConsentLanguage   string
	VendorListVersion int
	PolicyVersion     int
	IsServiceSpecific bool
	UseNonStandard    bool
	SpecialFeatures   uint16 // bit i-1 set: special feature i opted in (1..12)
	PurposesConsent   uint32 // bit i-1 set: purpose i consented (1..24)
	PurposesLI        uint32 // bit i-1 set: purpose i under legitimate interest
	PurposeOneTreat   bool
	PublisherCC       string
	MaxVendorConsent  int
	MaxVendorLI       int

	vendorConsent ranges
	vendorLI      ranges
}

// PurposeConsent reports whether purpose p (1..24) has consent.
func (t *TCString) PurposeConsent(p int) bool {
	return p >= 1 && p <= 24 && t.PurposesConsent&(1<<(p-1)) != 0
}

// SpecialFeature reports whether special feature f (1..12) is opted in.
func (t *TCString) SpecialFeature(f int) bool {
	return f >= 1 && f <= 12 && t.SpecialFeatures&(1<<(f-1)) != 0
}

// VendorConsent reports whether vendor v has consent.
func (t *TCString) VendorConsent(v int) bool { return t.vendorConsent.has(v) }

// VendorLI reports whether vendor v is under legitimate interest.
func (t *TCString) VendorLI(v int) bool { return t.vendorLI.has(v) }

// ranges is a set of vendor ids as sorted, non-overlapping [lo, hi] pairs.
type ranges [][2]int

func (r ranges) has(v int) bool {
	for _, x := range r {
		if v >= x[0] && v <= x[1] {
			return true
		}
	}
	return false
}

// bitReader reads big-endian bit fields.
type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

func (r *bitReader) uint(n int) (uint64, error) {
	if n > r.left() {
		return 0, fmt.Errorf("%w: ends at bit %d, %d more needed", ErrTCString, len(r.b)*8, n)
	}
	var v uint64
	for range n {
		bit := (r.b[r.pos/8] >> (7 - r.pos%8)) & 1
		v = v<<1 | uint64(bit)
		r.pos++
	}
	return v, nil
}

func (r *bitReader) int(n int) (int, error) {
	v, err := r.uint(n)
	return int(v), err
}

func (r *bitReader) bool() (bool, error) {
	v, err := r.uint(1)
	return v == 1, err
}

func (r *bitReader) letters() (string, error) {
	a, err := r.uint(6)
	if err != nil {
		return "", err
	}
	b, err := r.uint(6)
	if err != nil {
		return "", err
	}
	if a > 25 || b > 25 {
		return "", fmt.Errorf("%w: letter code %d/%d out of range", ErrTCString, a, b)
	}
	return string([]byte{byte('A' + a), byte('A' + b)}), nil
}

func (r *bitReader) time() (time.Time, error) {
	ds, err := r.uint(36) // deciseconds since the Unix epoch
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(ds) * 100).UTC(), nil
}

// vendors reads a vendor section: MaxVendorId, IsRangeEncoding, then a
// bit field or range entries.
func (r *bitReader) vendors() (int, ranges, error) {
	maxID, err := r.int(16)
	if err != nil {
		return 0, nil, err
	}
	isRange, err := r.bool()
	if err != nil {
		return 0, nil, err
	}
	var out ranges
	if !isRange {
		if maxID > r.left() {
			return 0, nil, fmt.Errorf("%w: vendor bit field of %d bits runs past the end", ErrTCString, maxID)
		}
		for v := 1; v <= maxID; v++ {
			set, _ := r.bool()
			if !set {
				continue
			}
			if n := len(out); n > 0 && out[n-1][1] == v-1 {
				out[n-1][1] = v
			} else {
				out = append(out, [2]int{v, v})
			}
		}
		return maxID, out, nil
	}
	n, err := r.int(12)
	if err != nil {
		return 0, nil, err
	}
	last := 0
	for range n {
		isRange, err := r.bool()
		if err != nil {
			return 0, nil, err
		}
		lo, err := r.int(16)
		if err != nil {
			return 0, nil, err
		}
		hi := lo
		if isRange {
			if hi, err = r.int(16); err != nil {
				return 0, nil, err
			}
		}
		if lo < 1 || hi < lo || hi > maxID || lo <= last {
			return 0, nil, fmt.Errorf("%w: vendor range %d-%d is out of order or beyond max vendor id %d", ErrTCString, lo, hi, maxID)
		}
		last = hi
		out = append(out, [2]int{lo, hi})
	}
	return maxID, out, nil
}

// maxTCStringLen bounds input: a core segment with every vendor of a large
// Global Vendor List as a bit field is a few kilobytes.
const maxTCStringLen = 64 << 10

// DecodeTCString decodes the core segment of a TC string of version 2
// (TCF v2.0 to v2.2). Other segments (disclosed vendors, publisher TC) are
// skipped. Every problem is an error wrapping ErrTCString; it never panics.
func DecodeTCString(s string) (*TCString, error) {
	if len(s) > maxTCStringLen {
		return nil, fmt.Errorf("%w: %d characters is too long", ErrTCString, len(s))
	}
	core, _, _ := strings.Cut(s, ".")
	if core == "" {
		return nil, fmt.Errorf("%w: empty", ErrTCString)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(core, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url: %v", ErrTCString, err)
	}
	r := &bitReader{b: raw}
	t := &TCString{}
	if t.Version, err = r.int(6); err != nil {
		return nil, err
	}
	if t.Version != 2 {
		return nil, fmt.Errorf("%w: version %d (want 2)", ErrTCString, t.Version)
	}
	steps := []func() error{
		func() (err error) { t.Created, err = r.time(); return },
		func() (err error) { t.LastUpdated, err = r.time(); return },
		func() (err error) { t.CMPID, err = r.int(12); return },
		func() (err error) { t.CMPVersion, err = r.int(12); return },
		func() (err error) { t.ConsentScreen, err = r.int(6); return },
		func() (err error) { t.ConsentLanguage, err = r.letters(); return },
		func() (err error) { t.VendorListVersion, err = r.int(12); return },
		func() (err error) { t.PolicyVersion, err = r.int(6); return },
		func() (err error) { t.IsServiceSpecific, err = r.bool(); return },
		func() (err error) { t.UseNonStandard, err = r.bool(); return },
		func() error { v, err := r.uint(12); t.SpecialFeatures = uint16(v); return err },
		func() error { v, err := r.uint(24); t.PurposesConsent = uint32(v); return err },
		func() error { v, err := r.uint(24); t.PurposesLI = uint32(v); return err },
		func() (err error) { t.PurposeOneTreat, err = r.bool(); return },
		func() (err error) { t.PublisherCC, err = r.letters(); return },
		func() (err error) { t.MaxVendorConsent, t.vendorConsent, err = r.vendors(); return },
		func() (err error) { t.MaxVendorLI, t.vendorLI, err = r.vendors(); return },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	// The bit fields are stored most significant first: purpose 1 is the
	// first bit read. Reverse them so that bit i-1 is purpose i.
	t.SpecialFeatures = uint16(reverseBits(uint64(t.SpecialFeatures), 12))
	t.PurposesConsent = uint32(reverseBits(uint64(t.PurposesConsent), 24))
	t.PurposesLI = uint32(reverseBits(uint64(t.PurposesLI), 24))
	if t.CMPID == 0 {
		return nil, fmt.Errorf("%w: CMP id 0 is not valid", ErrTCString)
	}
	return t, nil
}

func reverseBits(v uint64, n int) uint64 {
	var out uint64
	for range n {
		out = out<<1 | v&1
		v >>= 1
	}
	return out
}
