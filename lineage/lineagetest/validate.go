// Package lineagetest validates OpenLineage events against the spec's JSON
// Schemas (OpenLineage 2-0-2 and its facets, in lineage/testdata/schemas)
// and veil's own facet schemas (lineage/schemas), for tests.
package lineagetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator checks events.
type Validator struct {
	event  *jsonschema.Schema
	facets map[string]*jsonschema.Schema // by facet key
}

// New loads the schemas from the repository root (the directory holding
// lineage/).
func New(root string) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	add := func(path string) (string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			return "", err
		}
		return id, nil
	}
	specID, err := add(filepath.Join(root, "lineage/testdata/schemas/OpenLineage.json"))
	if err != nil {
		return nil, err
	}
	v := &Validator{facets: map[string]*jsonschema.Schema{}}
	files, _ := filepath.Glob(filepath.Join(root, "lineage/testdata/schemas/facets/*.json"))
	ids := map[string]string{}
	for _, f := range files {
		id, err := add(f)
		if err != nil {
			return nil, err
		}
		ids[filepath.Base(f)] = id
	}
	if v.event, err = c.Compile(specID + "#/$defs/RunEvent"); err != nil {
		return nil, err
	}
	for key, file := range map[string]string{
		"nominalTime": "NominalTimeRunFacet.json", "processing_engine": "ProcessingEngineRunFacet.json",
		"parent": "ParentRunFacet.json", "errorMessage": "ErrorMessageRunFacet.json", "jobType": "JobTypeJobFacet.json",
		"outputStatistics": "OutputStatisticsOutputDatasetFacet.json", "dataSource": "DatasourceDatasetFacet.json",
		"dataQualityMetrics": "DataQualityMetricsInputDatasetFacet.json", "documentation": "DocumentationJobFacet.json",
		"schema": "SchemaDatasetFacet.json", "ownership": "OwnershipJobFacet.json", "columnLineage": "ColumnLineageDatasetFacet.json",
	} {
		// A facet file's schema is an object whose property is the facet.
		if v.facets[key], err = c.Compile(ids[file]); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	for key, file := range map[string]string{"veil_privacy": "VeilPrivacyRunFacet.json", "veil_contributors": "VeilContributorsRunFacet.json"} {
		id, err := add(filepath.Join(root, "lineage/schemas", file))
		if err != nil {
			return nil, err
		}
		if v.facets[key], err = c.Compile(id); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Validate checks one event (JSON) against the RunEvent schema and each
// facet against its own schema; facets it has no schema for are errors.
func (v *Validator) Validate(data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := v.event.Validate(inst); err != nil {
		return fmt.Errorf("RunEvent: %v", err)
	}
	var ev struct {
		Run struct {
			Facets map[string]json.RawMessage `json:"facets"`
		} `json:"run"`
		Job struct {
			Facets map[string]json.RawMessage `json:"facets"`
		} `json:"job"`
		Inputs  []datasetFacets `json:"inputs"`
		Outputs []datasetFacets `json:"outputs"`
	}
	json.Unmarshal(data, &ev)
	all := []map[string]json.RawMessage{ev.Run.Facets, ev.Job.Facets}
	for _, d := range append(ev.Inputs, ev.Outputs...) {
		all = append(all, d.Facets, d.InputFacets, d.OutputFacets)
	}
	for _, facets := range all {
		for key, raw := range facets {
			s, ok := v.facets[key]
			if !ok {
				return fmt.Errorf("facet %q has no schema", key)
			}
			var doc any
			if strings.HasPrefix(key, "veil_") {
				doc, _ = jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			} else {
				doc, _ = jsonschema.UnmarshalJSON(strings.NewReader(fmt.Sprintf(`{%q: %s}`, key, raw)))
			}
			if err := s.Validate(doc); err != nil {
				return fmt.Errorf("facet %s: %v", key, err)
			}
		}
	}
	return nil
}

type datasetFacets struct {
	Facets       map[string]json.RawMessage `json:"facets"`
	InputFacets  map[string]json.RawMessage `json:"inputFacets"`
	OutputFacets map[string]json.RawMessage `json:"outputFacets"`
}

// ValidateCard checks a model card (JSON) against the Model Card Toolkit
// schema v0.0.2 (lineage/testdata/schemas/model-card under root).
func ValidateCard(root string, data []byte) error {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	path := filepath.Join(root, "lineage/testdata/schemas/model-card/model_card.schema.v0.0.2.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := c.AddResource("model_card.schema.json", doc); err != nil {
		return err
	}
	s, err := c.Compile("model_card.schema.json")
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
