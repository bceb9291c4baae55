package pipeline

import (
	"encoding/binary"
	"errors"

	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
)

// partial is what one row group says about one subject: its filter mark
// and its feature partial. Partials travel between workers in a compact
// binary form (see encode), since a subject's partial is emitted once per
// row group it appears in.
type partial struct {
	Mark privacy.SubjectMark
	segment.SubjectPartial
}

func (p *partial) merge(q *partial, maxEvents int) {
	p.Mark = p.Mark.Merge(q.Mark)
	p.SubjectPartial.Merge(&q.SubjectPartial, maxEvents)
}

// encode appends p: mark, count, region time and region, then the sample.
func (p *partial) encode(b []byte) []byte {
	b = append(b, byte(p.Mark))
	b = binary.AppendUvarint(b, uint64(p.Count))
	b = binary.AppendVarint(b, p.RegionAt)
	b = binary.AppendUvarint(b, uint64(len(p.Region)))
	b = append(b, p.Region...)
	b = binary.AppendUvarint(b, uint64(len(p.Sample)))
	for _, e := range p.Sample {
		b = binary.LittleEndian.AppendUint64(b, e.Key)
		b = append(b, e.Type)
		b = binary.AppendVarint(b, int64(e.Cat))
		b = binary.AppendVarint(b, e.Micros)
		b = binary.AppendVarint(b, e.At)
	}
	return b
}

var errCorrupt = errors.New("corrupt partial")

// decode reads what encode wrote.
func decode(b []byte) (*partial, error) {
	p := &partial{}
	if len(b) < 1 {
		return nil, errCorrupt
	}
	p.Mark, b = privacy.SubjectMark(b[0]), b[1:]
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	p.Count = int64(uv())
	p.RegionAt = sv()
	n := uv()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	p.Region, b = string(b[:n]), b[n:]
	m := uv()
	if m > uint64(len(b))/10 {
		return nil, errCorrupt
	}
	p.Sample = make([]segment.FeatureEvent, m)
	for i := range p.Sample {
		if len(b) < 9 {
			return nil, errCorrupt
		}
		e := &p.Sample[i]
		e.Key, e.Type, b = binary.LittleEndian.Uint64(b), b[8], b[9:]
		e.Cat = int32(sv())
		e.Micros = sv()
		e.At = sv()
	}
	if b == nil {
		return nil, errCorrupt
	}
	return p, nil
}
