package lineage

import (
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/release"
)

// Producer and schema URLs of what veil emits.
const (
	Producer      = "https://github.com/veil-privacy/veil"
	SpecSchemaURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
	// Namespace is the OpenLineage namespace of veil's jobs.
	Namespace = "veil"
	// PrivacyFacetSchemaURL is the schema of the veil_privacy run facet,
	// kept in this repository at lineage/schemas/VeilPrivacyRunFacet.json.
	PrivacyFacetSchemaURL = "https://raw.githubusercontent.com/veil-privacy/veil/main/lineage/schemas/VeilPrivacyRunFacet.json"
	// ContributorsFacetSchemaURL is the schema of the veil_contributors run
	// facet, lineage/schemas/VeilContributorsRunFacet.json.
	ContributorsFacetSchemaURL = "https://raw.githubusercontent.com/veil-privacy/veil/main/lineage/schemas/VeilContributorsRunFacet.json"
	// BloomEncoding names the encoding of Bloom.MarshalBinary.
	BloomEncoding = "veil-bloom-v2"
)

// Facet schema URLs of the standard facets veil uses (OpenLineage facets as
// shipped with spec 2-0-2).
var facetSchema = map[string]string{
	"nominalTime":        "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
	"processing_engine":  "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
	"parent":             "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
	"errorMessage":       "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
	"jobType":            "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
	"documentation":      "https://openlineage.io/spec/facets/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
	"outputStatistics":   "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
	"dataSource":         "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
	"dataQualityMetrics": "https://openlineage.io/spec/facets/1-0-3/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet",
	"schema":             "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
	"ownership":          "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
	"columnLineage":      "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
}

// Facet is one facet: its own fields plus _producer and _schemaURL.
type Facet map[string]any

// NewFacet returns the standard facet name with fields.
func NewFacet(name string, fields map[string]any) Facet {
	f := Facet{"_producer": Producer, "_schemaURL": facetSchema[name]}
	for k, v := range fields {
		f[k] = v
	}
	return f
}

// Event is an OpenLineage RunEvent.
type Event struct {
	EventType string    `json:"eventType"` // START, COMPLETE, ABORT, FAIL
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       Run       `json:"run"`
	Job       Job       `json:"job"`
	Inputs    []Dataset `json:"inputs,omitempty"`
	Outputs   []Dataset `json:"outputs,omitempty"`
}

// Run is the run of an event.
type Run struct {
	RunID  string           `json:"runId"`
	Facets map[string]Facet `json:"facets,omitempty"`
}

// Job is the job of an event.
type Job struct {
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`
	Facets    map[string]Facet `json:"facets,omitempty"`
}

// Dataset is an input or output dataset, named by the OpenLineage naming
// spec: namespace file or s3://bucket, name the path.
type Dataset struct {
	Namespace    string           `json:"namespace"`
	Name         string           `json:"name"`
	Facets       map[string]Facet `json:"facets,omitempty"`
	InputFacets  map[string]Facet `json:"inputFacets,omitempty"`
	OutputFacets map[string]Facet `json:"outputFacets,omitempty"`
}

// DatasetFromURL names a dataset by its location: file:///a/b -> (file,
// /a/b); s3://bucket/key -> (s3://bucket, key).
func DatasetFromURL(url string) Dataset {
	switch {
	case len(url) > 7 && url[:7] == "file://":
		return Dataset{Namespace: "file", Name: url[7:]}
	case len(url) > 5 && url[:5] == "s3://":
		rest := url[5:]
		for i := range len(rest) {
			if rest[i] == '/' {
				return Dataset{Namespace: "s3://" + rest[:i], Name: rest[i+1:]}
			}
		}
		return Dataset{Namespace: "s3://" + rest, Name: "/"}
	}
	return Dataset{Namespace: "file", Name: url}
}

// NewEvent returns an event with the common fields set.
func NewEvent(eventType string, at time.Time, runID, job string) Event {
	return Event{
		EventType: eventType, EventTime: at.UTC(), Producer: Producer, SchemaURL: SpecSchemaURL,
		Run: Run{RunID: runID, Facets: map[string]Facet{}},
		Job: Job{Namespace: Namespace, Name: job, Facets: map[string]Facet{}},
	}
}

// Standard run facets.

// NominalTime is the logical date as the nominal start and end.
func NominalTime(day time.Time) Facet {
	d := day.UTC().Truncate(24 * time.Hour)
	return NewFacet("nominalTime", map[string]any{"nominalStartTime": d.Format(time.RFC3339), "nominalEndTime": d.AddDate(0, 0, 1).Format(time.RFC3339)})
}

// ProcessingEngine names veil and its version.
func ProcessingEngine(version string) Facet {
	return NewFacet("processing_engine", map[string]any{"name": "veil", "version": version, "openlineageAdapterVersion": "2-0-2"})
}

// ProcessingEngineNamed names another engine that ran veil's code, such
// as "Apache Beam (flink runner)", and its version.
func ProcessingEngineNamed(name, version string) Facet {
	return NewFacet("processing_engine", map[string]any{"name": name, "version": version, "openlineageAdapterVersion": "2-0-2"})
}

// Parent links a step's run to the pipeline's run.
func Parent(runID, job string) Facet {
	return NewFacet("parent", map[string]any{"run": map[string]any{"runId": runID}, "job": map[string]any{"namespace": Namespace, "name": job}})
}

// ErrorMessage describes a failure.
func ErrorMessage(msg string) Facet {
	return NewFacet("errorMessage", map[string]any{"message": msg, "programmingLanguage": "go"})
}

// JobType marks a batch job of veil.
func JobType(kind string) Facet {
	return NewFacet("jobType", map[string]any{"processingType": "BATCH", "integration": "VEIL", "jobType": kind})
}

// OutputStatistics counts what an output holds.
func OutputStatistics(rows, bytes int64, files int) Facet {
	return NewFacet("outputStatistics", map[string]any{"rowCount": rows, "size": bytes, "fileCount": files})
}

// DataQualityMetrics counts what was read of an input.
func DataQualityMetrics(rows int64) Facet {
	return NewFacet("dataQualityMetrics", map[string]any{"rowCount": rows, "columnMetrics": map[string]any{}})
}

// Privacy is veil's own run facet: what the privacy layer did.
//
// Lineage goes to any configured endpoint, read by many: for a step that
// made a DP release (Withheld), the facet holds no exact figure of the
// private data (rows read, kept and dropped, subjects kept, consent
// records, the consent snapshot's fingerprint), only the guarantee, the
// charge and where the steward report holding them is.
type Privacy struct {
	Purposes       []string         `json:"purposes"`
	LogicalDate    string           `json:"logicalDate"`
	RowsRead       int64            `json:"rowsRead"`
	RowsKept       int64            `json:"rowsKept"`
	RowsDropped    map[string]int64 `json:"rowsDropped"`
	SubjectsKept   int64            `json:"subjectsKept"`
	ConsentRecords int64            `json:"consentRecords"`
	Epsilon        float64          `json:"epsilon,omitempty"`
	Delta          float64          `json:"delta,omitempty"`
	Accountant     string           `json:"accountant,omitempty"`
	CohortFloor    int              `json:"cohortFloor,omitempty"`
	// Releases break Epsilon (the ledger's charge for the run, at Delta)
	// down by release: each one's ε alone at Delta.
	Releases []release.Share `json:"releases,omitempty"`
	DPSGD    *DPSGD          `json:"dpsgd,omitempty"`
	// ClipNorm bounds each subject's contribution to a DP release other
	// than DP-SGD (the clip radius of DP k-means).
	ClipNorm float64 `json:"clipNorm,omitempty"`
	// ConsentSnapshot fingerprints the consent and erasure files read.
	ConsentSnapshot string `json:"consentSnapshot,omitempty"`
	// Jurisdictions the run was limited to (segregation), if any.
	Jurisdictions []string `json:"jurisdictions,omitempty"`
	// Withheld: the step made a DP release; Facet leaves out the exact
	// counts and the consent snapshot.
	Withheld bool `json:"-"`
	// StewardReport is where the step's steward report is.
	StewardReport string `json:"stewardReport,omitempty"`
}

// DPSGD records the DP-SGD settings of a training run.
type DPSGD struct {
	Unit            string  `json:"unit"`
	NoiseMultiplier float64 `json:"noiseMultiplier"`
	SamplingRate    float64 `json:"samplingRate"`
	Steps           int     `json:"steps"`
	ClipNorm        float64 `json:"clipNorm"`
	MaxInteractions int     `json:"maxInteractionsPerSubject"`
	// Epsilon and Delta are the released model's own guarantee, apart
	// from what the ledger charged the run for all its releases.
	Epsilon float64 `json:"modelEpsilon,omitempty"`
	Delta   float64 `json:"modelDelta,omitempty"`
}

// Facet turns the privacy record into the veil_privacy facet.
func (p Privacy) Facet() Facet {
	f := Facet{"_producer": Producer, "_schemaURL": PrivacyFacetSchemaURL, "purposes": p.Purposes, "logicalDate": p.LogicalDate}
	if !p.Withheld {
		f["rowsRead"], f["rowsKept"], f["rowsDropped"], f["subjectsKept"], f["consentRecords"] = p.RowsRead, p.RowsKept, p.RowsDropped, p.SubjectsKept, p.ConsentRecords
		if p.ConsentSnapshot != "" {
			f["consentSnapshot"] = p.ConsentSnapshot
		}
	}
	if p.StewardReport != "" {
		f["stewardReport"] = p.StewardReport
	}
	if p.Accountant != "" {
		f["epsilon"], f["delta"], f["accountant"] = p.Epsilon, p.Delta, p.Accountant
	}
	if p.CohortFloor > 0 {
		f["cohortFloor"] = p.CohortFloor
	}
	if len(p.Releases) > 0 {
		f["releases"] = p.Releases
	}
	if p.DPSGD != nil {
		f["dpsgd"] = p.DPSGD
	}
	if p.ClipNorm > 0 {
		f["clipNorm"] = p.ClipNorm
	}
	if len(p.Jurisdictions) > 0 {
		f["jurisdictions"] = p.Jurisdictions
	}
	return f
}

// Contributors is veil's run facet that locates the keyed Bloom filter of
// the subjects who contributed to the run's outputs (in the run's steward
// report). It gives the filter's capacity, a public bound, not the number
// of subjects.
type Contributors struct {
	Filter   string  `json:"filter"`
	Capacity int     `json:"capacity"`
	FPR      float64 `json:"falsePositiveRate"`
	Bits     uint64  `json:"bits"`
	Hashes   uint32  `json:"hashes"`
	KeyID    string  `json:"keyId"` // the steward key's id, or KeyIDRandom
}

// Facet turns the record into the veil_contributors facet.
func (c Contributors) Facet() Facet {
	return Facet{"_producer": Producer, "_schemaURL": ContributorsFacetSchemaURL, "encoding": BloomEncoding,
		"filter": c.Filter, "capacity": c.Capacity, "falsePositiveRate": c.FPR, "bits": c.Bits, "hashes": c.Hashes, "keyId": c.KeyID}
}

// DataSource is the dataSource facet of a dataset at url.
func DataSource(url string) Facet {
	d := DatasetFromURL(url)
	uri := url
	if !strings.Contains(uri, "://") {
		uri = "file://" + uri
	}
	return NewFacet("dataSource", map[string]any{"name": d.Namespace, "uri": uri})
}

// Schema is the schema facet of a table of contract c.
func Schema(c *dataset.Contract) Facet {
	fields := make([]map[string]any, len(c.Columns))
	for i, col := range c.Columns {
		f := map[string]any{"name": col.Name, "type": col.Kind.String(), "ordinal_position": i + 1}
		if col.Doc != "" {
			f["description"] = col.Doc
		}
		fields[i] = f
	}
	return NewFacet("schema", map[string]any{"fields": fields})
}

// Documentation is the documentation job facet.
func Documentation(text string) Facet {
	return NewFacet("documentation", map[string]any{"description": text, "contentType": "text/plain"})
}

// Ownership is the ownership job facet: owners named as URNs (user:jdoe,
// team:data).
func Ownership(owners ...string) Facet {
	list := make([]map[string]any, len(owners))
	for i, o := range owners {
		list[i] = map[string]any{"name": o, "type": "MAINTAINER"}
	}
	return NewFacet("ownership", map[string]any{"owners": list})
}

// InputField is a column an output column depends on, with how.
type InputField struct {
	Dataset   Dataset
	Field     string
	Type      string // DIRECT or INDIRECT
	Subtype   string // IDENTITY, TRANSFORMATION, AGGREGATION; JOIN, FILTER, GROUP_BY, ...
	Masking   bool   // the output does not reveal the input (hashing, DP noise)
	Describes string
}

func (f InputField) json() map[string]any {
	t := map[string]any{"type": f.Type, "subtype": f.Subtype, "masking": f.Masking}
	if f.Describes != "" {
		t["description"] = f.Describes
	}
	return map[string]any{"namespace": f.Dataset.Namespace, "name": f.Dataset.Name, "field": f.Field, "transformations": []any{t}}
}

// ColumnLineage is the columnLineage facet: each output column's inputs,
// and the inputs that shape the whole dataset (filters, grouping).
func ColumnLineage(fields map[string][]InputField, whole []InputField) Facet {
	out := map[string]any{}
	for col, ins := range fields {
		list := make([]any, len(ins))
		for i, in := range ins {
			list[i] = in.json()
		}
		out[col] = map[string]any{"inputFields": list}
	}
	f := map[string]any{"fields": out}
	if len(whole) > 0 {
		list := make([]any, len(whole))
		for i, in := range whole {
			list[i] = in.json()
		}
		f["dataset"] = list
	}
	return NewFacet("columnLineage", f)
}
