package segment

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/veil-privacy/veil/segment/kmeans"
)

// maxNpyValues bounds the matrix a .npy header may claim (2^31 values, 8
// GiB of float32), so a corrupt header cannot ask for any amount of memory.
const maxNpyValues = 1 << 31

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)`)
)

// ReadNpy reads a 2-D little-endian float32 or float64 array in C order from
// a NumPy .npy file (format versions 1 to 3). size is the byte length of r.
func ReadNpy(r io.Reader, size int64) (*kmeans.Matrix, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: .npy: %s", ErrInput, fmt.Sprintf(format, args...))
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return nil, bad("not a NumPy file")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, bad("truncated header")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, bad("truncated header")
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, bad("format version %d.%d is not supported", pre[6], pre[7])
	}
	if hlen > 1<<20 || (size > 0 && int64(hlen) > size) {
		return nil, bad("header of %d bytes", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, bad("truncated header")
	}
	h := string(hb)
	m := npyDescr.FindStringSubmatch(h)
	if m == nil {
		return nil, bad("header has no descr")
	}
	var width int
	switch m[1] {
	case "<f4", "float32":
		width = 4
	case "<f8", "float64":
		width = 8
	default:
		return nil, bad("dtype %q (want <f4 or <f8)", m[1])
	}
	if f := npyFortran.FindStringSubmatch(h); f == nil || f[1] != "False" {
		return nil, bad("only C-order arrays are supported")
	}
	s := npyShape.FindStringSubmatch(h)
	if s == nil || strings.Count(h[strings.Index(h, "'shape'"):], ",") < 1 {
		return nil, bad("shape must be (rows, columns)")
	}
	n, err1 := strconv.Atoi(s[1])
	d, err2 := strconv.Atoi(s[2])
	if err1 != nil || err2 != nil || n < 1 || d < 1 || int64(n)*int64(d) > maxNpyValues {
		return nil, bad("shape (%s, %s)", s[1], s[2])
	}
	need := int64(n) * int64(d) * int64(width)
	if size > 0 && int64(8+2+hlen)+need > size+2 {
		return nil, bad("shape (%d, %d) needs %d bytes of data, the file is %d bytes", n, d, need, size)
	}
	x := kmeans.NewMatrix(n, d)
	buf := make([]byte, 1<<16-(1<<16)%width)
	for i := 0; i < len(x.Data); {
		want := min(len(buf), (len(x.Data)-i)*width)
		if _, err := io.ReadFull(r, buf[:want]); err != nil {
			return nil, bad("data ends after %d of %d values", i, len(x.Data))
		}
		for p := 0; p < want; p += width {
			if width == 4 {
				x.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[p:]))
			} else {
				x.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(buf[p:])))
			}
			i++
		}
	}
	return x, nil
}

// WriteNpy writes m as a float32 .npy file (version 1.0).
func WriteNpy(w io.Writer, m *kmeans.Matrix) error {
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", m.N, m.D)
	// Pad so that the data starts on a 64-byte boundary, ending in '\n'.
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	out := make([]byte, 0, 10+len(header)+4*len(m.Data))
	out = append(out, "\x93NUMPY\x01\x00"...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(header)))
	out = append(out, header...)
	for _, v := range m.Data {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	_, err := w.Write(out)
	return err
}
