package jobs

import (
	"encoding/json"
	"path"
	"reflect"
	"strings"
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
		// Types from other packages are named with their package
		// (segment.Config is SegmentConfig, budget.Config BudgetConfig),
		// so that types of the same name do not collide. A kernel package
		// names its types after the step it serves (train/mf.Config is
		// TrainConfig, segment/kmeans.DPConfig SegmentDPConfig): the
		// schema's names stay when code moves between the two.
		Namer: func(t reflect.Type) string {
			pkg := path.Base(t.PkgPath())
			switch pkg {
			case "mf":
				pkg = "train"
			case "kmeans":
				pkg = "segment"
			}
			if pkg == "jobs" || pkg == "." || strings.HasPrefix(t.Name(), strings.ToUpper(pkg[:1])+pkg[1:]) {
				return t.Name()
			}
			return strings.ToUpper(pkg[:1]) + pkg[1:] + t.Name()
		},
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
