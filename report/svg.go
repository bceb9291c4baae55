package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
)

// The figures are inline SVG written here, with their coordinates at one
// decimal: no script, no font or file fetched. Each says in its title and
// description what it shows; the page puts a table of the same figures
// beside it. Shapes and dash patterns, not colour alone, tell the kinds
// of marks apart.

type svg struct{ b strings.Builder }

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func (s *svg) open(w, h float64, id, title, desc string) {
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.1f %.1f" width="%.1f" role="img" aria-labelledby="%s-t %s-d">`, w, h, w, id, id)
	s.f(`<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(title), id, esc(desc))
}

func (s *svg) html() template.HTML {
	s.f(`</svg>`)
	return template.HTML(s.b.String())
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// short cuts a label to n runes with an ellipsis.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// lineageSVG draws the run's lineage graph in layers: each node one column
// right of the furthest node it depends on.
func lineageSVG(g Graph) template.HTML {
	layer := map[string]int{}
	for _, n := range g.Nodes {
		layer[n.ID] = 0
	}
	// Longest path from a source; a graph of a run has no cycle, and the
	// bound of len(nodes) rounds keeps a malformed one finite.
	for range g.Nodes {
		changed := false
		for _, e := range g.Edges {
			if l := layer[e.From] + 1; l > layer[e.To] {
				layer[e.To], changed = l, true
			}
		}
		if !changed {
			break
		}
	}
	const colW, boxW, boxH, rowH, pad = 300.0, 260.0, 44.0, 64.0, 12.0
	rows := map[int]int{}
	pos := map[string][2]float64{}
	maxRow, maxLayer := 0, 0
	for _, n := range g.Nodes {
		l := layer[n.ID]
		pos[n.ID] = [2]float64{pad + float64(l)*colW, pad + float64(rows[l])*rowH}
		rows[l]++
		maxRow, maxLayer = max(maxRow, rows[l]), max(maxLayer, l)
	}
	w := 2*pad + float64(maxLayer)*colW + boxW
	h := 2*pad + float64(max(maxRow, 1))*rowH - (rowH - boxH)
	var s svg
	s.open(w, h, "lineage", "Lineage graph of the run", fmt.Sprintf("%d runs and datasets, %d edges; the table below lists every edge.", len(g.Nodes), len(g.Edges)))
	s.f(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="edge-head"/></marker></defs>`)
	for _, e := range g.Edges {
		a, b := pos[e.From], pos[e.To]
		x1, y1 := a[0]+boxW, a[1]+boxH/2
		x2, y2 := b[0], b[1]+boxH/2
		s.f(`<path class="edge" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" marker-end="url(#arrow)"/>`, x1, y1, (x1+x2)/2, y1, (x1+x2)/2, y2, x2, y2)
	}
	for _, n := range g.Nodes {
		p := pos[n.ID]
		rx := 0.0
		if n.Kind == "run" {
			rx = 12
		}
		s.f(`<g class="node %s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%.1f"/>`, n.Kind, p[0], p[1], boxW, boxH, rx)
		s.f(`<text x="%.1f" y="%.1f" class="kind">%s</text>`, p[0]+8, p[1]+16, n.Kind)
		s.f(`<text x="%.1f" y="%.1f">%s</text></g>`, p[0]+8, p[1]+34, esc(short(n.Label, 40)))
	}
	return s.html()
}

// axis returns a round upper bound for values up to v.
func axis(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	step := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*step >= v {
			return m * step
		}
	}
	return 10 * step
}

// ledgerSVG draws the ε spent per period as bars against the budget, a
// dashed line.
func ledgerSVG(l Ledger) template.HTML {
	const left, top, plotH, barW, gap = 56.0, 16.0, 180.0, 36.0, 14.0
	top2 := 0.0
	for _, p := range l.Periods {
		top2 = max(top2, p.Epsilon)
	}
	ymax := axis(max(top2, l.Epsilon))
	w := left + float64(len(l.Periods))*(barW+gap) + gap + 8
	w = max(w, 320)
	h := top + plotH + 56
	var s svg
	desc := fmt.Sprintf("ε spent in each of %d periods", len(l.Periods))
	if l.Epsilon > 0 {
		desc += fmt.Sprintf(" against the budget of ε %s per %s (dashed line)", num(l.Epsilon), l.Period)
	}
	s.open(w, h, "ledger-"+idOf(l.Identity), "Privacy budget spent per period: "+l.Identity, desc+"; the table beside lists the same figures.")
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		s.f(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left, w-8, y(v), y(v), left-6, y(v)+4, num(v))
	}
	for i, p := range l.Periods {
		x := left + gap + float64(i)*(barW+gap)
		s.f(`<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: ε %s</title></rect>`, x, y(p.Epsilon), barW, top+plotH-y(p.Epsilon), esc(p.Period), num(p.Epsilon))
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-45 %.1f %.1f)">%s</text>`, x+barW/2, top+plotH+14, x+barW/2, top+plotH+14, esc(p.Period))
	}
	if l.Epsilon > 0 {
		s.f(`<line class="budget" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f" text-anchor="end">budget ε %s</text>`, left, w-8, y(l.Epsilon), y(l.Epsilon), w-8, y(l.Epsilon)-4, num(l.Epsilon))
	}
	s.f(`<text class="tick" x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle">ε spent</text>`, top+plotH/2, top+plotH/2)
	return s.html()
}

// idOf makes an id attribute of any string.
func idOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// curveSVG draws recall@20 against ε: a line with square marks through the
// private points, the non-private model as a dashed line.
func curveSVG(m Model) template.HTML {
	const left, top, plotW, plotH = 56.0, 16.0, 360.0, 180.0
	var xs []float64
	ymax := 0.0
	for _, p := range m.Curve {
		if p.Private {
			xs = append(xs, p.Epsilon)
		}
		ymax = max(ymax, p.RecallAt)
	}
	ymax = axis(ymax)
	xmax := axis(slices.Max(append(xs, 1)))
	var s svg
	s.open(left+plotW+16, top+plotH+48, "curve-"+idOf(m.Step), "Privacy-utility curve: "+m.Step, "Recall at 20 on the private holdout for each ε trained; the table beside lists the same figures.")
	x := func(v float64) float64 { return left + v/xmax*plotW }
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		s.f(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left, left+plotW, y(v), y(v), left-6, y(v)+4, num(v))
		xv := xmax * float64(i) / 4
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(xv), top+plotH+16, num(xv))
	}
	var pts []string
	for _, p := range m.Curve {
		if !p.Private {
			s.f(`<line class="budget" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f" text-anchor="end">non-private</text>`, left, left+plotW, y(p.RecallAt), y(p.RecallAt), left+plotW, y(p.RecallAt)-4)
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Epsilon), y(p.RecallAt)))
		s.f(`<rect class="mark" x="%.1f" y="%.1f" width="8.0" height="8.0"><title>ε %s: recall@20 %.3f</title></rect>`, x(p.Epsilon)-4, y(p.RecallAt)-4, num(p.Epsilon), p.RecallAt)
	}
	if len(pts) > 1 {
		s.f(`<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
	}
	s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">ε</text>`, left+plotW/2, top+plotH+36)
	return s.html()
}

// sizesSVG draws the cohorts' released sizes as horizontal bars.
func sizesSVG(c Cohorts) template.HTML {
	const left, top, plotW, barH, gap = 90.0, 8.0, 300.0, 22.0, 8.0
	vmax := 0.0
	size := func(p Profile) float64 {
		if p.NoisySize != nil {
			return float64(*p.NoisySize)
		}
		return float64(p.Size)
	}
	for _, p := range c.Profiles {
		vmax = max(vmax, size(p))
	}
	vmax = axis(vmax)
	h := top + float64(len(c.Profiles))*(barH+gap) + 24
	var s svg
	s.open(left+plotW+60, h, "sizes-"+idOf(c.Step), "Cohort sizes: "+c.Step, "The released size of each cohort; the table beside lists the same figures.")
	for i, p := range c.Profiles {
		y := top + float64(i)*(barH+gap)
		w := size(p) / vmax * plotW
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">cohort %d</text>`, left-6, y+barH/2+4, p.ID)
		s.f(`<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, left, y, w, barH)
		s.f(`<text class="tick" x="%.1f" y="%.1f">%s</text>`, left+w+4, y+barH/2+4, releasedSize(p))
	}
	return s.html()
}
