package strictyaml

import (
	"errors"
	"strings"
	"testing"
)

type doc struct {
	A int `yaml:"a"`
	B struct {
		C string `yaml:"c"`
	} `yaml:"b"`
}

func TestDecode(t *testing.T) {
	var v doc
	if err := Decode("f.yaml", []byte("a: 1\nb:\n  c: x\n"), &v); err != nil || v.A != 1 || v.B.C != "x" {
		t.Fatalf("%+v %v", v, err)
	}
	for in, want := range map[string]string{
		"a: 1\nb:\n  c: x\n  d: 2\n": `f.yaml:4:3: unknown field "d"`,
		"a: x\n":                     "f.yaml:1:4:",
		"a: 1\na: 2\n":               "f.yaml:2:1:",
		"a: [1\n":                    "f.yaml:1:4:",
		"":                           "f.yaml: file is empty",
		// A malformed tag; privacy/testdata/fuzz/FuzzParsePolicy holds the
		// input that made go-yaml panic.
		"b:\n  c: !000\n00000:0000: #0\n": "f.yaml",
	} {
		err := Decode("f.yaml", []byte(in), &v)
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want prefix %q", in, err, want)
		}
	}
}
