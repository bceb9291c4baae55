package report

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Audience is who a site is built for.
type Audience string

// The audiences of a site.
const (
	// Steward: the data steward, who reads releases and steward reports.
	Steward Audience = "steward"
	// Marketing: the marketing role, who reads releases only.
	Marketing Audience = "marketing"
)

// ParseAudience checks an audience's name.
func ParseAudience(s string) (Audience, error) {
	switch a := Audience(s); a {
	case Steward, Marketing:
		return a, nil
	}
	return "", fmt.Errorf("audience %q: want marketing or steward", s)
}

// Site is everything a site shows. It holds no time but the run's own, so
// that the same run gives the same files.
type Site struct {
	Audience    Audience `json:"audience"`
	Pipeline    string   `json:"pipeline"`
	LogicalDate string   `json:"logical_date"`
	RunID       string   `json:"run_id"`
	Completed   string   `json:"completed_at"`
	Owners      []string `json:"owners,omitempty"`
	Steps       []Step   `json:"steps"`
	Graph       Graph    `json:"graph"`
	// Privacy is the steward's privacy page: nil in a marketing build.
	Privacy *Privacy  `json:"privacy,omitempty"`
	Models  []Model   `json:"models,omitempty"`
	Cohorts []Cohorts `json:"cohorts,omitempty"`
	// Assets are files copied into the site (plots, datasheets, export
	// files), by their path in the site.
	Assets map[string][]byte `json:"-"`
}

// Step is one step of the run.
type Step struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	RunID   string   `json:"run_id"`
	Status  string   `json:"status"`
	Seconds float64  `json:"seconds"`
	Inputs  []string `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
	// Privacy says what the step released under DP, or that it is not DP.
	Privacy string `json:"privacy,omitempty"`
}

// Graph is the run's lineage: runs and datasets as nodes, an edge from an
// input to the run that read it and from a run to what it wrote.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is a run or a dataset of the lineage graph.
type Node struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Kind  string `json:"kind"` // "run" or "dataset"
}

// Edge links two nodes of the lineage graph.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Privacy is the steward's page: the budget ledgers, the audits and the
// audit log.
type Privacy struct {
	Ledgers  []Ledger      `json:"ledgers"`
	Audits   []AuditResult `json:"audits,omitempty"`
	AuditLog AuditLog      `json:"audit_log"`
	// Lineage is the lineage store, for the erasure impact lookup.
	Lineage string `json:"lineage"`
	Spec    string `json:"spec"`
}

// Ledger is the spend on one dataset identity.
type Ledger struct {
	Identity string    `json:"identity"`
	Ledger   string    `json:"ledger"`
	SetBy    string    `json:"set_by,omitempty"`
	Epsilon  float64   `json:"epsilon"` // the budget per period; 0: none
	Delta    float64   `json:"delta"`
	Period   string    `json:"period"`
	Periods  []Period  `json:"periods"`
	Releases []Release `json:"releases"`
	Error    string    `json:"error,omitempty"`
}

// Period is the spend of one budget period.
type Period struct {
	Period  string  `json:"period"`
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	Runs    int     `json:"runs"`
}

// Release is one ledger record: what a run was charged, for what.
type Release struct {
	RunID       string      `json:"run_id"`
	Job         string      `json:"job"`
	LogicalDate string      `json:"logical_date"`
	Accountant  string      `json:"accountant"`
	Epsilon     float64     `json:"epsilon"`
	Delta       float64     `json:"delta"`
	Periods     string      `json:"periods"`
	Mechanisms  []Mechanism `json:"mechanisms"`
}

// Mechanism is one planned event of a release.
type Mechanism struct {
	Mechanism string `json:"mechanism"`
	Plan      string `json:"plan"`
	Count     int    `json:"count"`
	Note      string `json:"note"`
}

// AuditResult is a privacy audit beside the ε it audits.
type AuditResult struct {
	Step          string  `json:"step"`
	Kind          string  `json:"kind"`
	ProvenEpsilon string  `json:"proven_epsilon"`
	LowerBound    float64 `json:"epsilon_lower_bound"`
	Confidence    float64 `json:"confidence"`
	Detail        string  `json:"detail"`
}

// AuditLog is the audit log's verification.
type AuditLog struct {
	Location string       `json:"location"`
	Intact   bool         `json:"intact"`
	Error    string       `json:"error,omitempty"`
	Records  []AuditEntry `json:"records"`
}

// AuditEntry is one record of the audit log for this run.
type AuditEntry struct {
	Seq       int    `json:"seq"`
	Time      string `json:"time"`
	Principal string `json:"principal"`
	Job       string `json:"job"`
	Outcome   string `json:"outcome"`
}

// Model is a training step: its model card and, for stewards, its
// appendix, privacy-utility curve and exposure.
type Model struct {
	Step      string `json:"step"`
	RunID     string `json:"run_id"`
	Guarantee string `json:"guarantee"`
	Card      string `json:"card"` // the public card, Markdown
	// Steward only.
	Appendix string       `json:"appendix,omitempty"`
	Curve    []CurvePoint `json:"curve,omitempty"`
	Eval     []EvalRow    `json:"evaluation,omitempty"`
	Exposure []Fact       `json:"exposure,omitempty"`
}

// CurvePoint is a point of the privacy-utility curve.
type CurvePoint struct {
	Epsilon  float64 `json:"epsilon"` // +Inf: non-private (JSON: 0 with NonPrivate)
	Private  bool    `json:"private"`
	RecallAt float64 `json:"recall_at_20"`
	NDCG     float64 `json:"ndcg_at_20"`
}

// EvalRow is one model's evaluation on the private holdout.
type EvalRow struct {
	Model    string  `json:"model"`
	Recall20 float64 `json:"recall_at_20"`
	NDCG20   float64 `json:"ndcg_at_20"`
	Coverage float64 `json:"catalog_coverage_at_20"`
}

// Fact is a named figure.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Cohorts is a segmentation step as marketing reads it.
type Cohorts struct {
	Step     string    `json:"step"`
	RunID    string    `json:"run_id"`
	Output   string    `json:"output"`
	Privacy  string    `json:"privacy"`
	Profiles []Profile `json:"profiles"`
	Plots    []Plot    `json:"plots,omitempty"`
	Files    []File    `json:"files"`
	// Datasheet is the release's datasheet, Markdown.
	Datasheet string `json:"datasheet,omitempty"`
	// Exact says the steward build shows exact sizes beside noisy ones.
	Exact bool `json:"exact,omitempty"`
}

// Profile is one cohort.
type Profile struct {
	ID          int       `json:"id"`
	NoisySize   *int64    `json:"noisy_size,omitempty"`
	Size        int       `json:"size,omitempty"` // exact: steward build, or a run without noisy sizes
	Explanation string    `json:"explanation"`
	Note        string    `json:"note,omitempty"`
	Features    []Feature `json:"features,omitempty"`
}

// Feature is a feature that sets a cohort apart.
type Feature struct {
	Description string  `json:"description"`
	Z           float64 `json:"z"`
	Value       float64 `json:"value"`
	Population  float64 `json:"population"`
}

// Plot is an image of the release, copied into the site.
type Plot struct {
	Href string `json:"href"`
	Alt  string `json:"alt"`
}

// File is an export file of a release.
type File struct {
	Name  string `json:"name"`
	Href  string `json:"href,omitempty"` // set when copied into the site
	Size  int64  `json:"size"`
	Class string `json:"class"`
}

//go:embed templates
var templates embed.FS

// page is one page of the site.
type page struct {
	File, Title, Template string
}

// Pages lists the pages of s in the order of the navigation.
func (s *Site) pages() []page {
	ps := []page{{"index.html", "Run", "run"}}
	if s.Privacy != nil {
		ps = append(ps, page{"privacy.html", "Privacy", "privacy"})
	}
	if len(s.Models) > 0 {
		ps = append(ps, page{"model.html", "Model", "model"})
	}
	if len(s.Cohorts) > 0 {
		ps = append(ps, page{"cohorts.html", "Cohorts", "cohorts"})
	}
	return ps
}

var funcs = template.FuncMap{
	"num":        num,
	"seconds":    func(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) + " s" },
	"fixed":      func(v float64, n int) string { return strconv.FormatFloat(v, 'f', n, 64) },
	"size":       releasedSize,
	"markdown":   markdown,
	"lineageSVG": lineageSVG,
	"ledgerSVG":  ledgerSVG,
	"curveSVG":   curveSVG,
	"sizesSVG":   sizesSVG,
}

// num formats a figure the way veil's commands do: the shortest form that
// reads back to the same float64.
func num(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Write renders s into dir (created if needed) and returns the paths of
// the files it wrote, relative to dir, sorted. A dir that holds an earlier
// site is emptied first, so that no page of another build (a steward
// page in a marketing folder) stays; a dir that holds anything else is
// refused.
func Write(dir string, s *Site) ([]string, error) {
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the report's templates: %w", err)
	}
	files := map[string][]byte{}
	css, err := templates.ReadFile("templates/style.css")
	if err != nil {
		return nil, err
	}
	files["style.css"] = css
	pages := s.pages()
	for _, p := range pages {
		var b bytes.Buffer
		data := struct {
			*Site
			Page  page
			Pages []page
		}{s, p, pages}
		if err := tmpl.ExecuteTemplate(&b, p.Template, data); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", p.File, err)
		}
		files[p.File] = b.Bytes()
	}
	for name, data := range s.Assets {
		files[name] = data
	}
	if err := clearSite(dir); err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		if strings.Contains(name, "..") || filepath.IsAbs(name) {
			return nil, fmt.Errorf("writing the report: asset path %q leaves the site", name)
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("writing the report: %w", err)
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return nil, fmt.Errorf("writing the report: %w", err)
		}
	}
	return names, nil
}

// releasedSize is a cohort's size as released: noisy when noise was added.
func releasedSize(p Profile) string {
	if p.NoisySize != nil {
		return strconv.FormatInt(*p.NoisySize, 10)
	}
	return strconv.Itoa(p.Size)
}

// clearSite empties dir of an earlier site: its pages, style sheet and files.
func clearSite(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	} else if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		return fmt.Errorf("writing the report: %s is not empty and holds no earlier report (no index.html)", dir)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".html") || name == "style.css" || name == "files" {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
		}
	}
	return nil
}
