package jobs

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/invopop/jsonschema"
)

// SpecSchema returns the JSON Schema of pipeline specs, generated from the
// Go structs (yaml field names; unknown keys are not allowed, as in veil run).
// configs/schema.json holds it for editors; a test keeps the two equal.
func SpecSchema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeFor[time.Duration]() {
				return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, Description: "a duration such as 90s, 10m or 1h30m"}
			}
			return nil
		},
	}
	s := r.Reflect(&Spec{})
	s.ID = "https://veil-privacy.github.io/veil/schema/pipeline-spec.json"
	s.Title = "veil pipeline spec"
	return json.MarshalIndent(s, "", "  ")
}
