package jobs

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	jsonschema "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/veil-privacy/veil/segment"
)

var update = flag.Bool("update", false, "rewrite configs/schema.json")

func TestSpecSchemaIsShipped(t *testing.T) {
	got, err := SpecSchema()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		os.WriteFile("../configs/schema.json", got, 0o644)
	}
	want, _ := os.ReadFile("../configs/schema.json")
	if !bytes.Equal(got, want) {
		t.Fatal("configs/schema.json is out of date: go test ./jobs -run SpecSchema -update")
	}
}

// The shipped specs validate against the schema, and a spec with an unknown
// key does not.
func TestSpecsValidateAgainstSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../configs/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	check := func(doc []byte) error {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		// Round-trip through JSON so numbers and maps take JSON types.
		j, _ := yaml.YAMLToJSON(doc)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	for _, f := range []string{"nightly.yaml", "nightly-zones.yaml", "nightly-s3.yaml"} {
		doc, _ := os.ReadFile("../configs/" + f)
		if err := check(doc); err != nil {
			t.Errorf("configs/%s: %v", f, err)
		}
	}
	if err := check([]byte("name: n\nstate: s\ncolour: red\nsteps: []\n")); err == nil {
		t.Error("an unknown key passed the schema")
	}
}

// A segment step that sets a few k-means fields keeps the defaults of the
// others (n_init 4, tol 1e-4, ...), and unknown keys inside it are still
// errors with their line.
func TestStepDefaults(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	os.WriteFile(p, []byte("name: x\nstate: /tmp/s\nsteps:\n  - name: a\n    segment:\n      events: /e\n      output: /o\n      kmeans: {k: \"3\", seed: 5}\n"), 0o644)
	s, err := LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	d := segment.DefaultConfig()
	got := s.Steps[0].Segment
	want := d.KMeans
	want.K, want.Seed = "3", 5
	if got.KMeans != want || got.Floor != d.Floor || got.Features != d.Features || got.ContributorsFPR != d.ContributorsFPR {
		t.Errorf("step config %+v, want defaults around k 3 and seed 5", got)
	}
	os.WriteFile(p, []byte("name: x\nstate: /tmp/s\nsteps:\n  - name: a\n    segment:\n      events: /e\n      output: /o\n      kmeans: {k: \"3\", sed: 5}\n"), 0o644)
	if _, err := LoadSpec(p); err == nil || !strings.Contains(err.Error(), ":8:") || !strings.Contains(err.Error(), "sed") {
		t.Errorf("unknown key in a step: %v", err)
	}
}

// Specs come from outside: no input makes the decoder or the validation
// panic, and what is accepted validates again.
func FuzzParseSpec(f *testing.F) {
	for _, file := range []string{"../configs/nightly.yaml", "../configs/nightly-zones.yaml", "../configs/nightly-s3.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\nstate: /s\nsteps:\n  - name: a\n    pseudonymize: {in: a.csv, out: /e, id_column: c, key_env: K}\n"))
	f.Add([]byte("name: x\nstate: /s\nsteps:\n  - name: a\n    segment: {events: /e, output: /o, kmeans: {k: auto}}\n    depends_on: [a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted spec fails validation: %v", err)
		}
		MakePlan(s)
		if _, err := s.Order(); err != nil {
			t.Fatalf("accepted spec has no order: %v", err)
		}
		s.unencryptedWrites()
	})
}
