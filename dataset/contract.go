package dataset

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Kind is the logical type of a contract column.
type Kind int

const (
	KindString      Kind = iota + 1 // BYTE_ARRAY, STRING/ENUM or unannotated
	KindInt64                       // INT64 (or INT32), no logical type or a signed INT
	KindDouble                      // DOUBLE (or FLOAT)
	KindTimestamp                   // INT64 TIMESTAMP in ms, µs or ns
	KindFloat32List                 // a LIST of FLOAT (vectors)
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt64:
		return "int64"
	case KindDouble:
		return "double"
	case KindTimestamp:
		return "timestamp"
	case KindFloat32List:
		return "list<float>"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Column is one column of a data contract.
type Column struct {
	Name     string
	Kind     Kind
	Nullable bool // may hold nulls, and may be missing from a file
	Doc      string
}

// Contract is a named, versioned table schema that files must satisfy.
// Files may carry extra columns; they are ignored.
type Contract struct {
	Name    string
	Version int
	Columns []Column
}

// Column returns the named column.
func (c *Contract) Column(name string) (Column, bool) {
	i := slices.IndexFunc(c.Columns, func(col Column) bool { return col.Name == name })
	if i < 0 {
		return Column{}, false
	}
	return c.Columns[i], true
}

// The version 1 data contracts of DESIGN.md.
var (
	EventsContract = &Contract{Name: "events", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"event_time", KindTimestamp, false, "time of the event, UTC"},
		{"event_type", KindString, false, "view, add_to_cart, purchase, return, ..."},
		{"item_id", KindString, false, "product id"},
		{"category", KindString, true, "product category path"},
		{"quantity", KindInt64, true, "number of units"},
		{"value", KindDouble, true, "monetary value in the shop's currency"},
		{"region", KindString, true, "coarse location, ISO 3166 country or subdivision"},
	}}
	ConsentContract = &Contract{Name: "consent", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"purpose", KindString, true, "analytics, segmentation, personalization, marketing; null with a TC string"},
		{"status", KindString, false, "granted, denied or withdrawn"},
		{"recorded_at", KindTimestamp, false, "when the choice was recorded, UTC"},
		{"source", KindString, false, "cmp, tcf, gpc, support, ..."},
		{"jurisdiction", KindString, true, "legal regime, such as GDPR or CCPA"},
		{"tc_string", KindString, true, "IAB TCF v2.2 TC string, with source tcf"},
	}}
	ErasureContract = &Contract{Name: "erasure", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"requested_at", KindTimestamp, false, "when erasure was requested, UTC"},
	}}
	// CatalogContract is the shop's product list: public, not personal
	// data. When a job has one it fixes the item universe of models.
	CatalogContract = &Contract{Name: "catalog", Version: 1, Columns: []Column{
		{"item_id", KindString, false, "product id"},
		{"category", KindString, false, "product category path"},
		{"name", KindString, true, "product name"},
		{"price", KindDouble, true, "list price in the shop's currency"},
		{"first_listed", KindTimestamp, true, "when the product was first listed, UTC"},
	}}
	CohortAssignmentsContract = &Contract{Name: "cohort_assignments", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"cohort_id", KindInt64, false, "cohort number"},
		{"distance", KindDouble, false, "distance to the cohort centroid in standardized units"},
		{"run_id", KindString, false, "run that produced the assignment"},
	}}
	ItemFactorsContract = &Contract{Name: "item_factors", Version: 1, Columns: []Column{
		{"item_id", KindString, false, "product id"},
		{"bias", KindDouble, false, "item bias"},
		{"vector", KindFloat32List, false, "item factor"},
	}}
	SubjectFeaturesContract = &Contract{Name: "subject_features", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"region", KindString, true, "region of the subject's latest event"},
		{"features", KindFloat32List, false, "raw features in original units, in the order of feature_names.json"},
	}}
	RecommendationsContract = &Contract{Name: "recommendations", Version: 1, Columns: []Column{
		{"subject_id", KindString, false, "pseudonymous subject token"},
		{"rank", KindInt64, false, "1 for the best"},
		{"item_id", KindString, false, "product id"},
		{"score", KindDouble, false, "predicted preference"},
	}}
)

// Contracts lists every contract by name.
var Contracts = map[string]*Contract{
	EventsContract.Name:            EventsContract,
	ConsentContract.Name:           ConsentContract,
	ErasureContract.Name:           ErasureContract,
	CatalogContract.Name:           CatalogContract,
	CohortAssignmentsContract.Name: CohortAssignmentsContract,
	ItemFactorsContract.Name:       ItemFactorsContract,
	RecommendationsContract.Name:   RecommendationsContract,
	SubjectFeaturesContract.Name:   SubjectFeaturesContract,
}

// Check verifies that schema satisfies the contract for the named columns
// (all columns when cols is empty). It returns a *SchemaError naming file and
// column for the first problem, and the leaf index of each column (-1 for a
// nullable column the file lacks).
func (c *Contract) Check(file string, schema *parquet.Schema, cols []string) ([]int, error) {
	if len(cols) == 0 {
		for _, col := range c.Columns {
			cols = append(cols, col.Name)
		}
	}
	leaves := make(map[string]int)
	fields := make(map[string]parquet.Field)
	for i, path := range schema.Columns() {
		leaves[strings.Join(path, ".")] = i
	}
	for _, f := range schema.Fields() {
		fields[f.Name()] = f
	}
	idx := make([]int, len(cols))
	for i, name := range cols {
		col, ok := c.Column(name)
		if !ok {
			return nil, &SchemaError{File: file, Contract: c.Name, Column: name, Problem: "is not part of the contract"}
		}
		f, ok := fields[name]
		if !ok {
			if col.Nullable {
				idx[i] = -1
				continue
			}
			return nil, &SchemaError{File: file, Contract: c.Name, Column: name, Problem: "required column is missing"}
		}
		if problem := checkKind(f, col.Kind); problem != "" {
			return nil, &SchemaError{File: file, Contract: c.Name, Column: name, Problem: problem}
		}
		if col.Kind == KindFloat32List {
			idx[i] = -1 // read row-wise; no single leaf
			for path, j := range leaves {
				if strings.HasPrefix(path, name+".") {
					idx[i] = j
				}
			}
			continue
		}
		idx[i] = leaves[name]
	}
	return idx, nil
}

func checkKind(f parquet.Field, want Kind) (problem string) {
	// parquet-go panics on some impossible schemas (a LIST annotation on a
	// leaf: its Kind panics); a corrupt file is a problem, not a crash.
	defer func() {
		if r := recover(); r != nil {
			problem = fmt.Sprintf("has a type parquet cannot read (%v), want %s", r, want)
		}
	}()
	if want == KindFloat32List {
		if f.Leaf() || len(f.Fields()) != 1 {
			return fmt.Sprintf("has type %s, want %s", f.Type(), want)
		}
		return ""
	}
	if !f.Leaf() {
		return fmt.Sprintf("is a group, want %s", want)
	}
	if f.Repeated() {
		return fmt.Sprintf("is repeated, want a single %s", want)
	}
	t := f.Type()
	var lt any
	if l := t.LogicalType(); l != nil {
		lt = l.Value
	}
	got := fmt.Sprintf("has type %s", t)
	switch want {
	case KindString:
		if t.Kind() != parquet.ByteArray {
			return got + ", want string"
		}
		switch lt.(type) {
		case nil, *format.StringType, *format.EnumType:
			return ""
		}
		return got + ", want string"
	case KindInt64:
		if t.Kind() != parquet.Int64 && t.Kind() != parquet.Int32 {
			return got + ", want int64"
		}
		switch v := lt.(type) {
		case nil:
			return ""
		case *format.IntType:
			if v.IsSigned {
				return ""
			}
		}
		return got + ", want int64"
	case KindDouble:
		if (t.Kind() == parquet.Double || t.Kind() == parquet.Float) && lt == nil {
			return ""
		}
		return got + ", want double"
	case KindTimestamp:
		if _, ok := lt.(*format.TimestampType); ok && t.Kind() == parquet.Int64 {
			return ""
		}
		return got + ", want an INT64 timestamp (ms, µs or ns)"
	}
	return got
}

// timestampScale returns the factor that turns stored values of a timestamp
// column into microseconds: a multiplier when > 0, a divisor when < 0.
func timestampScale(t parquet.Type) int64 {
	ts, ok := t.LogicalType().Value.(*format.TimestampType)
	if !ok || ts.Unit.Value == nil {
		return 1
	}
	switch ts.Unit.Value.Duration() {
	case time.Millisecond:
		return 1000
	case time.Nanosecond:
		return -1000
	}
	return 1
}
