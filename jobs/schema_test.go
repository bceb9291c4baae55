package jobs

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/goccy/go-yaml"
	jsonschema "github.com/santhosh-tekuri/jsonschema/v6"
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
	nightly, _ := os.ReadFile("../configs/nightly.yaml")
	if err := check(nightly); err != nil {
		t.Errorf("configs/nightly.yaml: %v", err)
	}
	if err := check([]byte("name: n\nstate: s\ncolour: red\nsteps: []\n")); err == nil {
		t.Error("an unknown key passed the schema")
	}
}
