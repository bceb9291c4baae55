package segment

import (
	"bytes"
	"errors"
	"testing"
)

func TestNpyRoundTrip(t *testing.T) {
	x, _ := blobs(100, 7, 3, 1, 1)
	var b bytes.Buffer
	if err := WriteNpy(&b, x); err != nil {
		t.Fatal(err)
	}
	y, err := ReadNpy(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if y.N != 100 || y.D != 7 || !equal32(x.Data, y.Data) {
		t.Fatal("round trip differs")
	}
}

// A float64 file written by NumPy: np.save(f, np.array([[1.5, -2], [3, 4]]))
func TestNpyFloat64(t *testing.T) {
	var b bytes.Buffer
	header := "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"
	header += string(bytes.Repeat([]byte(" "), 128-10-len(header)-1)) + "\n"
	b.WriteString("\x93NUMPY\x01\x00")
	b.WriteByte(byte(len(header)))
	b.WriteByte(0)
	b.WriteString(header)
	for _, v := range []uint64{0x3FF8000000000000, 0xC000000000000000, 0x4008000000000000, 0x4010000000000000} {
		for i := range 8 {
			b.WriteByte(byte(v >> (8 * i)))
		}
	}
	x, err := ReadNpy(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !equal32(x.Data, []float32{1.5, -2, 3, 4}) {
		t.Fatalf("read %v", x.Data)
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNpyBad(t *testing.T) {
	good := func(h string) []byte {
		return append(append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), 0), h...)
	}
	for name, data := range map[string][]byte{
		"not npy":   []byte("hello world"),
		"int dtype": good("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }\n"),
		"fortran":   good("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n"),
		"1-D":       good("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n"),
		"truncated": good("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n"),
		"huge":      good("{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000), }\n"),
	} {
		if _, err := ReadNpy(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadNpy(f *testing.F) {
	var b bytes.Buffer
	x, _ := blobs(5, 3, 2, 1, 1)
	WriteNpy(&b, x)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ReadNpy(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error %v does not wrap ErrInput", err)
			}
			return
		}
		if len(x.Data) != x.N*x.D {
			t.Fatal("inconsistent matrix")
		}
	})
}
