package lineage

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// ModelCard is a model card in the Model Card Toolkit schema v0.0.2
// (https://modelcards.withgoogle.com): the JSON a training run writes as
// model_card.json, and what RenderCard turns into Markdown.
type ModelCard struct {
	SchemaVersion        string             `json:"schema_version"`
	ModelDetails         CardDetails        `json:"model_details"`
	ModelParameters      CardParameters     `json:"model_parameters"`
	QuantitativeAnalysis CardQuantitative   `json:"quantitative_analysis"`
	Considerations       CardConsiderations `json:"considerations"`
}

// CardDetails is the model_details section.
type CardDetails struct {
	Name          string          `json:"name"`
	Overview      string          `json:"overview"`
	Documentation string          `json:"documentation,omitempty"`
	Owners        []CardOwner     `json:"owners,omitempty"`
	Version       *CardVersion    `json:"version,omitempty"`
	References    []CardReference `json:"references,omitempty"`
	Path          string          `json:"path,omitempty"`
}

// CardOwner is an owner of the model.
type CardOwner struct {
	Name    string `json:"name"`
	Contact string `json:"contact,omitempty"`
}

// CardVersion names a model version; Date is YYYY-MM-DD.
type CardVersion struct {
	Name string `json:"name"`
	Date string `json:"date,omitempty"`
	Diff string `json:"diff,omitempty"`
}

// CardReference is a link (a URI).
type CardReference struct {
	Reference string `json:"reference"`
}

// CardParameters is the model_parameters section.
type CardParameters struct {
	ModelArchitecture string        `json:"model_architecture"`
	Data              []CardDataset `json:"data"`
	InputFormat       string        `json:"input_format,omitempty"`
	OutputFormat      string        `json:"output_format,omitempty"`
	OutputFormatMap   []CardKeyVal  `json:"output_format_map,omitempty"`
}

// CardDataset describes a dataset used to train or evaluate.
type CardDataset struct {
	Name        string         `json:"name"`
	Link        string         `json:"link,omitempty"`
	Description string         `json:"description,omitempty"`
	Sensitive   *CardSensitive `json:"sensitive,omitempty"`
}

// CardSensitive lists sensitive data in a dataset.
type CardSensitive struct {
	SensitiveData []string `json:"sensitive_data"`
}

// CardKeyVal is a key-value pair.
type CardKeyVal struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CardQuantitative is the quantitative_analysis section.
type CardQuantitative struct {
	PerformanceMetrics []CardMetric  `json:"performance_metrics"`
	Graphics           *CardGraphics `json:"graphics,omitempty"`
}

// CardMetric is one performance metric; values are strings in the schema.
type CardMetric struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Slice string `json:"slice,omitempty"`
}

// CardGraphics is a collection of base64 PNG images.
type CardGraphics struct {
	Description string        `json:"description,omitempty"`
	Collection  []CardGraphic `json:"collection"`
}

// CardGraphic is one image; Image is base64 PNG.
type CardGraphic struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// CardConsiderations is the considerations section.
type CardConsiderations struct {
	Users                 []CardText `json:"users,omitempty"`
	UseCases              []CardText `json:"use_cases,omitempty"`
	Limitations           []CardText `json:"limitations,omitempty"`
	Tradeoffs             []CardText `json:"tradeoffs,omitempty"`
	EthicalConsiderations []CardRisk `json:"ethical_considerations,omitempty"`
}

// CardText is an item with a description.
type CardText struct {
	Description string `json:"description"`
}

// CardRisk is a risk and how it is mitigated.
type CardRisk struct {
	Name               string `json:"name"`
	MitigationStrategy string `json:"mitigation_strategy"`
}

// RenderCard renders a card as Markdown for a reader who is not an
// engineer: what the model is, what privacy it guarantees, its figures (a
// table per kind of figure, a row per slice: the privacy figures of a
// public card, and how well it does where the card may say so), its plots (images[i] names the file, beside
// the card, of graphic i; the graphics themselves stay in the JSON) and its
// limits.
func RenderCard(c *ModelCard, images ...string) []byte {
	var b bytes.Buffer
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...); b.WriteByte('\n') }
	d := c.ModelDetails
	p("# Model card: %s", d.Name)
	p("")
	p("%s", d.Overview)
	p("")
	if d.Version != nil {
		p("- **Version**: %s (%s)", d.Version.Name, d.Version.Date)
	}
	for _, o := range d.Owners {
		p("- **Owner**: %s", o.Name)
	}
	if d.Path != "" {
		p("- **Stored at**: `%s`", d.Path)
	}
	if d.Documentation != "" {
		p("")
		p("%s", d.Documentation)
	}
	if r := c.Considerations.EthicalConsiderations; len(r) > 0 {
		p("")
		p("## Privacy and risks")
		for _, x := range r {
			p("")
			p("**%s.** %s", x.Name, x.MitigationStrategy)
		}
	}
	mp := c.ModelParameters
	p("")
	p("## How it was built")
	p("")
	p("%s", mp.ModelArchitecture)
	for _, ds := range mp.Data {
		p("")
		p("- **%s**: %s", ds.Name, ds.Description)
		if ds.Sensitive != nil {
			for _, s := range ds.Sensitive.SensitiveData {
				p("  - sensitive: %s", s)
			}
		}
	}
	if len(mp.OutputFormatMap) > 0 {
		p("")
		p("| output | what it holds |")
		p("|---|---|")
		for _, kv := range mp.OutputFormatMap {
			p("| `%s` | %s |", kv.Key, cell(kv.Value))
		}
	}
	q := c.QuantitativeAnalysis
	if len(q.PerformanceMetrics) > 0 {
		p("")
		p("## Figures")
		p("")
		// One row per slice, one column per metric type, in order of
		// appearance; consecutive slices with the same metrics share a
		// table, so that different kinds of figures are not mixed.
		var rows []string
		types := map[string][]string{}
		val := map[[2]string]string{}
		for _, m := range q.PerformanceMetrics {
			if !slices.Contains(rows, m.Slice) {
				rows = append(rows, m.Slice)
			}
			if !slices.Contains(types[m.Slice], m.Type) {
				types[m.Slice] = append(types[m.Slice], m.Type)
			}
			val[[2]string{m.Slice, m.Type}] = m.Value
		}
		for k, s := range rows {
			cols := types[s]
			if k == 0 || !slices.Equal(cols, types[rows[k-1]]) {
				if k > 0 {
					p("")
				}
				p("| | %s |", strings.Join(cols, " | "))
				p("|---%s|", strings.Repeat("|---", len(cols)))
			}
			row := make([]string, len(cols))
			for i, t := range cols {
				row[i] = val[[2]string{s, t}]
			}
			name := s
			if name == "" {
				name = "this model"
			}
			p("| %s | %s |", cell(name), strings.Join(row, " | "))
		}
	}
	if q.Graphics != nil && len(q.Graphics.Collection) > 0 && len(images) > 0 {
		p("")
		if q.Graphics.Description != "" {
			p("%s", q.Graphics.Description)
		}
		for i, g := range q.Graphics.Collection {
			if i < len(images) && images[i] != "" {
				p("")
				p("![%s](%s)", g.Name, images[i])
			}
		}
	}
	cs := c.Considerations
	section := func(title string, items []CardText) {
		if len(items) == 0 {
			return
		}
		p("")
		p("## %s", title)
		p("")
		for _, it := range items {
			p("- %s", it.Description)
		}
	}
	section("Who it is for", cs.Users)
	section("What it is for", cs.UseCases)
	section("Limitations", cs.Limitations)
	section("Trade-offs", cs.Tradeoffs)
	return b.Bytes()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
