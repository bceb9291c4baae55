package segment

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"path"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/veil-privacy/veil/dataset"
)

// MonitorConfig sets the thresholds that turn the composition and drift
// reports into warnings (in the report, the datasheet and a metric).
type MonitorConfig struct {
	// DriftPSI warns when the population stability index of a feature or
	// of the cohort distribution against the previous run exceeds it
	// (default 0.2, the usual "significant shift").
	DriftPSI float64 `yaml:"drift_psi"`
	// RepresentationRatio warns when a region or jurisdiction's share of a
	// cohort is more than this many times its share of the population, or
	// less than its inverse (default 3).
	RepresentationRatio float64 `yaml:"representation_ratio"`
	// MinGroupSubjects leaves out regions and jurisdictions with fewer
	// subjects in the population (default 30): their ratios are noise.
	MinGroupSubjects int `yaml:"min_group_subjects"`
}

// DefaultMonitorConfig returns the defaults above.
func DefaultMonitorConfig() MonitorConfig {
	return MonitorConfig{DriftPSI: 0.2, RepresentationRatio: 3, MinGroupSubjects: 30}
}

// Validate checks the thresholds.
func (c MonitorConfig) Validate() error {
	if !(c.DriftPSI > 0) || !(c.RepresentationRatio > 1) || c.MinGroupSubjects < 1 {
		return fmt.Errorf("%w: monitoring: drift_psi %v must be > 0, representation_ratio %v > 1, min_group_subjects %d >= 1",
			ErrConfig, c.DriftPSI, c.RepresentationRatio, c.MinGroupSubjects)
	}
	return nil
}

// Monitoring is what the composition and drift checks of a run found.
type Monitoring struct {
	Composition *Composition `json:"composition,omitempty"`
	Drift       *Drift       `json:"drift,omitempty"`
	Warnings    []string     `json:"warnings,omitempty"`
	Plot        string       `json:"plot,omitempty"` // file name of the plot in the output
}

// Composition compares each cohort's make-up by region and jurisdiction
// with the population's.
type Composition struct {
	Groups   []GroupShare `json:"groups"` // every (cohort, dimension, group) compared
	MaxOver  *GroupShare  `json:"most_over_represented,omitempty"`
	MaxUnder *GroupShare  `json:"most_under_represented,omitempty"`
}

// GroupShare is one group's share of one cohort against the population.
type GroupShare struct {
	Cohort          int     `json:"cohort_id"`
	Dimension       string  `json:"dimension"` // region or jurisdiction
	Group           string  `json:"group"`
	CohortShare     float64 `json:"cohort_share"`
	PopulationShare float64 `json:"population_share"`
	Ratio           float64 `json:"ratio"`
}

// Drift compares a run with the previous committed run of the same job.
type Drift struct {
	PreviousRun  string         `json:"previous_run"`
	PreviousDate string         `json:"previous_logical_date"`
	Features     []FeatureDrift `json:"features"`
	CohortPSI    float64        `json:"cohort_psi"`
	Max          FeatureDrift   `json:"max_feature"`
}

// FeatureDrift is one feature's population stability index.
type FeatureDrift struct {
	Feature string  `json:"feature"`
	PSI     float64 `json:"psi"`
}

// StatsFile holds what the next run's drift check needs: each feature's
// decile edges and bin shares, and each cohort's centroid and share.
const StatsFile = "feature_stats.json"

// MonitoringPlotFile is the plot of the composition and drift reports.
const MonitoringPlotFile = "monitoring.png"

type runStats struct {
	Features []featureStats `json:"features"`
	Cohorts  []cohortStats  `json:"cohorts"`
}

type featureStats struct {
	Name   string    `json:"name"`
	Edges  []float64 `json:"edges"`  // bin i holds values <= Edges[i]; the last bin the rest
	Shares []float64 `json:"shares"` // len(Edges)+1
}

type cohortStats struct {
	Centroid map[string]float64 `json:"centroid"`
	Share    float64            `json:"share"`
}

// jurisdiction maps a region code to the privacy law its subjects fall
// under, for the composition report.
func jurisdiction(region string) string {
	country, sub, _ := strings.Cut(region, "-")
	switch {
	case region == "":
		return "unknown"
	case eea[country]:
		return "EU/EEA (GDPR)"
	case country == "GB":
		return "UK (UK GDPR)"
	case country == "CH":
		return "CH (FADP)"
	case country == "US" && sub == "CA":
		return "US-CA (CCPA)"
	case country == "US":
		return "US (other states)"
	case country == "BR":
		return "BR (LGPD)"
	}
	return "other"
}

var eea = map[string]bool{"AT": true, "BE": true, "BG": true, "HR": true, "CY": true, "CZ": true, "DK": true, "EE": true, "FI": true, "FR": true,
	"DE": true, "GR": true, "HU": true, "IE": true, "IT": true, "LV": true, "LT": true, "LU": true, "MT": true, "NL": true, "PL": true, "PT": true,
	"RO": true, "SK": true, "SI": true, "ES": true, "SE": true, "IS": true, "LI": true, "NO": true}

// compose compares every cohort's make-up with the population's.
func compose(f *Features, cohorts []Cohort, cfg MonitorConfig) *Composition {
	c := &Composition{}
	n := 0
	for _, co := range cohorts {
		n += len(co.Members)
	}
	if n == 0 {
		return c
	}
	for _, dim := range []struct {
		name  string
		group func(region string) string
	}{{"region", func(r string) string { return cmp.Or(r, "unknown") }}, {"jurisdiction", jurisdiction}} {
		pop := map[string]int{}
		for _, co := range cohorts {
			for _, i := range co.Members {
				pop[dim.group(f.Regions[i])]++
			}
		}
		for _, co := range cohorts {
			in := map[string]int{}
			for _, i := range co.Members {
				in[dim.group(f.Regions[i])]++
			}
			for g, p := range pop {
				if p < cfg.MinGroupSubjects || len(co.Members) == 0 {
					continue
				}
				gs := GroupShare{Cohort: co.ID, Dimension: dim.name, Group: g, CohortShare: float64(in[g]) / float64(len(co.Members)), PopulationShare: float64(p) / float64(n)}
				gs.Ratio = gs.CohortShare / gs.PopulationShare
				c.Groups = append(c.Groups, gs)
			}
		}
	}
	slices.SortFunc(c.Groups, func(a, b GroupShare) int {
		return cmp.Or(cmp.Compare(a.Dimension, b.Dimension), cmp.Compare(a.Cohort, b.Cohort), cmp.Compare(a.Group, b.Group))
	})
	for i := range c.Groups {
		g := &c.Groups[i]
		if c.MaxOver == nil || g.Ratio > c.MaxOver.Ratio {
			c.MaxOver = g
		}
		if c.MaxUnder == nil || g.Ratio < c.MaxUnder.Ratio {
			c.MaxUnder = g
		}
	}
	return c
}

// stats summarizes a run for the next run's drift check.
func stats(f *Features, cohorts []Cohort, profiles []Profile) runStats {
	var s runStats
	n := f.Raw.N
	col := make([]float64, n)
	for j, name := range f.Names {
		for i := range n {
			col[i] = float64(f.Raw.Data[i*f.Raw.D+j])
		}
		sorted := slices.Clone(col)
		slices.Sort(sorted)
		var edges []float64
		for q := 1; q < 10; q++ {
			e := sorted[min(n-1, q*n/10)]
			if len(edges) == 0 || e > edges[len(edges)-1] {
				edges = append(edges, e)
			}
		}
		s.Features = append(s.Features, featureStats{Name: name.Name, Edges: edges, Shares: shares(col, edges)})
	}
	total := 0
	for _, c := range cohorts {
		total += len(c.Members)
	}
	for i, c := range cohorts {
		s.Cohorts = append(s.Cohorts, cohortStats{Centroid: profiles[i].Centroid, Share: float64(len(c.Members)) / float64(max(1, total))})
	}
	return s
}

func shares(values, edges []float64) []float64 {
	out := make([]float64, len(edges)+1)
	for _, v := range values {
		k, _ := slices.BinarySearch(edges, v) // first edge >= v
		out[k]++
	}
	for i := range out {
		out[i] /= float64(max(1, len(values)))
	}
	return out
}

// psi is the population stability index of cur against prev, with shares
// floored at 1e-4 so that an empty bin does not make it infinite.
func psi(prev, cur []float64) float64 {
	s := 0.0
	for i := range prev {
		p, c := math.Max(prev[i], 1e-4), math.Max(cur[i], 1e-4)
		s += (c - p) * math.Log(c/p)
	}
	return s
}

// previousStats finds the latest committed run of the job before this one
// (by logical date, then commit time) that has a stats file.
func previousStats(ctx context.Context, ref dataset.Ref, day, runID string) (*runStats, string, string, error) {
	prefix := strings.TrimSuffix(ref.Key, "/")
	if prefix != "" {
		prefix += "/"
	}
	type cand struct {
		dir, dt, id string
		m           *dataset.Manifest
	}
	var best *cand
	for info, err := range ref.Store.List(ctx, prefix) {
		if err != nil {
			return nil, "", "", err
		}
		if path.Base(info.Key) != dataset.ManifestName {
			continue
		}
		dir := path.Dir(info.Key)
		dt, id, ok := parseRunDir(strings.TrimPrefix(dir, prefix))
		if !ok || dt > day || id == runID {
			continue
		}
		m, err := dataset.ReadManifest(ctx, ref.Store, dir)
		if err != nil {
			return nil, "", "", err
		}
		if _, ok := m.Find(StatsFile); !ok {
			continue
		}
		if best == nil || dt > best.dt || (dt == best.dt && m.CreatedAt.After(best.m.CreatedAt)) {
			best = &cand{dir, dt, id, m}
		}
	}
	if best == nil {
		return nil, "", "", nil
	}
	f, _ := best.m.Find(StatsFile)
	data, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(best.dir, f.Key))
	if err != nil {
		return nil, "", "", err
	}
	var s runStats
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, "", "", fmt.Errorf("%s/%s: %w: %v", ref.Store.Location(), f.Key, dataset.ErrCorrupt, err)
	}
	return &s, best.id, best.dt, nil
}

// drift compares this run with the previous run's stats.
func drift(f *Features, prev *runStats, cur runStats) *Drift {
	d := &Drift{}
	n := f.Raw.N
	col := make([]float64, n)
	for _, pf := range prev.Features {
		j := slices.IndexFunc(f.Names, func(x Feature) bool { return x.Name == pf.Name })
		if j < 0 || len(pf.Shares) != len(pf.Edges)+1 {
			continue
		}
		for i := range n {
			col[i] = float64(f.Raw.Data[i*f.Raw.D+j])
		}
		fd := FeatureDrift{Feature: pf.Name, PSI: psi(pf.Shares, shares(col, pf.Edges))}
		d.Features = append(d.Features, fd)
		if fd.PSI > d.Max.PSI {
			d.Max = fd
		}
	}
	// Cohorts: each previous cohort is matched to the nearest current one
	// (standardized with this run's scales); shares of matched pairs are
	// compared, unmatched cohorts against an empty share.
	z := func(c map[string]float64) []float64 {
		v := make([]float64, len(f.Names))
		for j, nm := range f.Names {
			if f.Std[j] > 1e-12 {
				v[j] = (transform(float32(c[nm.Name])) - f.Mean[j]) / f.Std[j]
			}
		}
		return v
	}
	type pair struct {
		p, c int
		dist float64
	}
	var pairs []pair
	for pi, pc := range prev.Cohorts {
		pz := z(pc.Centroid)
		for ci, cc := range cur.Cohorts {
			cz := z(cc.Centroid)
			s := 0.0
			for j := range pz {
				s += (pz[j] - cz[j]) * (pz[j] - cz[j])
			}
			pairs = append(pairs, pair{pi, ci, s})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(a.dist, b.dist) })
	usedP, usedC := map[int]bool{}, map[int]bool{}
	var ps, cs []float64
	for _, pr := range pairs {
		if usedP[pr.p] || usedC[pr.c] {
			continue
		}
		usedP[pr.p], usedC[pr.c] = true, true
		ps, cs = append(ps, prev.Cohorts[pr.p].Share), append(cs, cur.Cohorts[pr.c].Share)
	}
	for i, c := range prev.Cohorts {
		if !usedP[i] {
			ps, cs = append(ps, c.Share), append(cs, 0)
		}
	}
	for i, c := range cur.Cohorts {
		if !usedC[i] {
			ps, cs = append(ps, 0), append(cs, c.Share)
		}
	}
	d.CohortPSI = psi(ps, cs)
	return d
}

// monitor builds the monitoring report of a (non-DP) run and writes the
// stats file the next run compares with.
func monitor(ctx context.Context, out *dataset.Output, ref dataset.Ref, cfg Config, f *Features, cohorts []Cohort, rep *Report) error {
	mc := cfg.Monitoring
	m := &Monitoring{Composition: compose(f, cohorts, mc)}
	cur := stats(f, cohorts, rep.Profiles)
	prev, id, dt, err := previousStats(ctx, ref, rep.LogicalDate, rep.RunID)
	if err != nil && !errors.Is(err, dataset.ErrNotExist) {
		return err
	}
	if prev != nil {
		m.Drift = drift(f, prev, cur)
		m.Drift.PreviousRun, m.Drift.PreviousDate = id, dt
		if m.Drift.Max.PSI > mc.DriftPSI {
			m.Warnings = append(m.Warnings, fmt.Sprintf("feature %s drifted since run %s (PSI %.2f > %.2f)", m.Drift.Max.Feature, id, m.Drift.Max.PSI, mc.DriftPSI))
		}
		if m.Drift.CohortPSI > mc.DriftPSI {
			m.Warnings = append(m.Warnings, fmt.Sprintf("the cohort distribution drifted since run %s (PSI %.2f > %.2f)", id, m.Drift.CohortPSI, mc.DriftPSI))
		}
	}
	if c := m.Composition; c.MaxOver != nil && c.MaxOver.Ratio > mc.RepresentationRatio {
		g := c.MaxOver
		m.Warnings = append(m.Warnings, fmt.Sprintf("%s %s is over-represented in cohort %d: %.0f%% of the cohort, %.0f%% of the population (%.1f×)",
			g.Dimension, g.Group, g.Cohort, 100*g.CohortShare, 100*g.PopulationShare, g.Ratio))
	}
	if c := m.Composition; c.MaxUnder != nil && c.MaxUnder.Ratio < 1/mc.RepresentationRatio {
		g := c.MaxUnder
		m.Warnings = append(m.Warnings, fmt.Sprintf("%s %s is under-represented in cohort %d: %.0f%% of the cohort, %.0f%% of the population (%.2f×)",
			g.Dimension, g.Group, g.Cohort, 100*g.CohortShare, 100*g.PopulationShare, g.Ratio))
	}
	rep.Monitoring = m
	png, err := PlotMonitoring(m, mc)
	if err != nil {
		return err
	}
	if err := out.PutFile(ctx, MonitoringPlotFile, png, 0); err != nil {
		return err
	}
	loc, _ := out.FileLocation(MonitoringPlotFile)
	m.Plot = path.Base(loc)
	data, _ := json.MarshalIndent(cur, "", "  ")
	return out.PutFile(ctx, StatsFile, append(data, '\n'), 0)
}

// PlotMonitoring draws the monitoring report: each jurisdiction's share of
// every cohort against its share of the population (ratio 1 is fair), and,
// when there is a previous run, the PSI of every feature.
func PlotMonitoring(m *Monitoring, cfg MonitorConfig) ([]byte, error) {
	if m == nil || m.Composition == nil {
		return nil, fmt.Errorf("%w: nothing to plot", ErrInput)
	}
	var labels []string
	var ratios plotter.Values
	for _, g := range m.Composition.Groups {
		if g.Dimension == "jurisdiction" {
			labels = append(labels, fmt.Sprintf("c%d %s", g.Cohort, strings.Fields(g.Group)[0]))
			ratios = append(ratios, g.Ratio)
		}
	}
	rows := 1
	if m.Drift != nil {
		rows = 2
	}
	plots := make([][]*plot.Plot, rows)
	comp, err := barPlot("Share of each cohort against share of all customers, by jurisdiction", "ratio (1 = as in the population)",
		"cohort's share ÷ overall share", labels, ratios, color.RGBA{R: 55, G: 110, B: 180, A: 255},
		refLine{cfg.RepresentationRatio, fmt.Sprintf("warning: over-represented (%.3g×)", cfg.RepresentationRatio)},
		refLine{1 / cfg.RepresentationRatio, fmt.Sprintf("warning: under-represented (%.2g×)", 1/cfg.RepresentationRatio)})
	if err != nil {
		return nil, err
	}
	plots[0] = []*plot.Plot{comp}
	if d := m.Drift; d != nil {
		vals := make(plotter.Values, len(d.Features))
		names := make([]string, len(d.Features))
		for i, f := range d.Features {
			vals[i], names[i] = f.PSI, f.Feature
		}
		dp, err := barPlot("Drift since the previous run (PSI per feature)", "PSI", "population stability index", names, vals, color.RGBA{R: 230, G: 140, B: 40, A: 255},
			refLine{cfg.DriftPSI, fmt.Sprintf("warning: drift (PSI %.3g)", cfg.DriftPSI)})
		if err != nil {
			return nil, err
		}
		plots[1] = []*plot.Plot{dp}
	}
	c := vgimg.New(8*vg.Inch, vg.Length(4*rows)*vg.Inch)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: rows, Cols: 1, PadY: vg.Points(12)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// refLine is a dashed horizontal line of a bar plot and its legend entry.
type refLine struct {
	Y     float64
	Label string
}

// barPlot draws labelled bars with dashed threshold lines; the bars and
// every line have a legend entry.
func barPlot(title, ylabel, barLabel string, labels []string, vals plotter.Values, c color.Color, thresholds ...refLine) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.Y.Label.Text = title, ylabel
	if len(vals) == 0 {
		return p, nil
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(8))
	if err != nil {
		return nil, err
	}
	bars.Color = c
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = math.Pi / 3
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	p.Legend.Add(barLabel, bars)
	dashes := [][]vg.Length{{vg.Points(4), vg.Points(3)}, {vg.Points(1), vg.Points(2)}}
	top := 0.0
	for _, v := range vals {
		top = math.Max(top, v)
	}
	for i, t := range thresholds {
		h := plotter.NewFunction(func(float64) float64 { return t.Y })
		h.Color, h.Dashes = color.RGBA{R: 200, G: 80, B: 60, A: 255}, dashes[i%len(dashes)]
		p.Add(h)
		p.Legend.Add(t.Label, h)
		top = math.Max(top, t.Y)
	}
	// Room above the bars and lines for the legend.
	p.Y.Min, p.Y.Max = 0, top*1.45
	p.Legend.Top = true
	return p, nil
}
