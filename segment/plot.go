package segment

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotSizes draws the cohort sizes as a bar chart, PNG: the noisy sizes
// when they are released (never the exact ones beside them), else the
// exact sizes of a run that is not DP.
func PlotSizes(profiles []Profile) ([]byte, error) {
	p := plot.New()
	p.Title.Text = "Cohort sizes"
	p.Y.Label.Text = "subjects"
	sizes := make(plotter.Values, len(profiles))
	noisy := make(plotter.Values, len(profiles))
	names := make([]string, len(profiles))
	hasNoisy := false
	for i, pr := range profiles {
		sizes[i] = float64(pr.Size)
		if pr.NoisySize != nil {
			noisy[i] = float64(*pr.NoisySize)
			hasNoisy = true
		}
		names[i] = fmt.Sprintf("cohort %d", pr.CohortID)
	}
	w := vg.Points(14)
	label, shown, c := "size (exact; not DP)", sizes, color.RGBA{R: 55, G: 110, B: 180, A: 255}
	if hasNoisy {
		label, shown, c = "noisy size (released)", noisy, color.RGBA{R: 230, G: 140, B: 40, A: 255}
		sizes = make(plotter.Values, len(profiles))
	}
	bars, err := plotter.NewBarChart(shown, w)
	if err != nil {
		return nil, err
	}
	bars.Color = c
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.Legend.Add(label, bars)
	// Room above the bars for the legend.
	top := 0.0
	for i := range sizes {
		top = math.Max(top, math.Max(sizes[i], noisy[i]))
	}
	p.Y.Min, p.Y.Max = 0, top*1.3
	p.Legend.Top = true
	p.NominalX(names...)
	return render(p, 6, 4)
}

// PlotCentroids draws the cohort centroids projected on the first two
// principal components of the centroids themselves (weighted by size), as
// circles whose area follows the cohort size. It uses only the centroids and
// sizes, so it shows no subject and, in DP runs, only released values.
func PlotCentroids(centroids [][]float64, sizes []float64, labels []string) ([]byte, error) {
	return PlotCentroidsNamed(centroids, sizes, labels, nil)
}

// PlotCentroidsNamed is PlotCentroids with the features' names (one per
// column of the centroids): each axis is labelled by the features that
// load most on its component, in words ("more purchases, less recency"),
// so that people who do not think in principal components can read it.
func PlotCentroidsNamed(centroids [][]float64, sizes []float64, labels, features []string) ([]byte, error) {
	k := len(centroids)
	if k == 0 {
		return nil, fmt.Errorf("%w: no centroids to plot", ErrInput)
	}
	d := len(centroids[0])
	var w float64
	mean := make([]float64, d)
	for i, c := range centroids {
		w += sizes[i]
		for j, v := range c {
			mean[j] += sizes[i] * v
		}
	}
	for j := range mean {
		mean[j] /= math.Max(w, 1)
	}
	cov := mat.NewSymDense(d, nil)
	for i, c := range centroids {
		for a := range d {
			for b := a; b < d; b++ {
				cov.SetSym(a, b, cov.At(a, b)+sizes[i]*(c[a]-mean[a])*(c[b]-mean[b]))
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, fmt.Errorf("%w: principal components did not converge", ErrInput)
	}
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	// Eigenvalues come in ascending order: the last two columns.
	pc := func(c []float64, col int) float64 {
		var s float64
		for j := range d {
			s += (c[j] - mean[j]) * vecs.At(j, col)
		}
		return s
	}
	pts := make(plotter.XYs, k)
	for i, c := range centroids {
		pts[i].X = pc(c, d-1)
		if d > 1 {
			pts[i].Y = pc(c, d-2)
		}
	}
	p := plot.New()
	p.Title.Text = "Where the cohorts lie (circle area: cohort size)"
	vals := eig.Values(nil)
	total := 0.0
	for _, v := range vals {
		total += math.Max(v, 0)
	}
	p.X.Label.Text = axisLabel(1, vecs.ColView(d-1), vals[d-1], total, features)
	p.Y.Label.Text = "PC 2"
	if d > 1 {
		p.Y.Label.Text = axisLabel(2, vecs.ColView(d-2), vals[d-2], total, features)
	}
	maxSize := 0.0
	for _, s := range sizes {
		maxSize = math.Max(maxSize, s)
	}
	for i := range pts {
		sc, err := plotter.NewScatter(plotter.XYs{pts[i]})
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4 + 16*math.Sqrt(sizes[i]/math.Max(maxSize, 1)))
		sc.GlyphStyle.Color = palette(i)
		p.Add(sc)
	}
	// Labels beside their circles, in black on the white background: the
	// same contrast whatever the circle's colour, and never hidden by it.
	for i := range pts {
		r := 4 + 16*math.Sqrt(sizes[i]/math.Max(maxSize, 1))
		name, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{pts[i]}, Labels: []string{labels[i]}})
		if err != nil {
			return nil, err
		}
		name.TextStyle[0].XAlign, name.TextStyle[0].YAlign = draw.XLeft, draw.YCenter
		name.TextStyle[0].Color = color.Black
		name.Offset = vg.Point{X: vg.Points(r + 3)}
		p.Add(name)
	}
	// Pad the axes so that circles and labels fit.
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, q := range pts {
		xmin, xmax = math.Min(xmin, q.X), math.Max(xmax, q.X)
		ymin, ymax = math.Min(ymin, q.Y), math.Max(ymax, q.Y)
	}
	padX, padY := math.Max(0.2*(xmax-xmin), 0.5), math.Max(0.15*(ymax-ymin), 0.5)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin-padX, xmax+padX, ymin-padY, ymax+padY
	return render(p, 7, 6)
}

// axisLabel names principal component n by the features that load most on
// it (up to two, with at least a fifth of the largest loading), signed so
// that the largest loading points to the right or up; without feature
// names it is "PC n".
func axisLabel(n int, v mat.Vector, variance, total float64, features []string) string {
	label := fmt.Sprintf("PC %d", n)
	if total > 0 {
		label += fmt.Sprintf(", %.0f%% of the spread", 100*math.Max(variance, 0)/total)
	}
	if len(features) != v.Len() {
		return label
	}
	idx := make([]int, v.Len())
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(v.AtVec(b)), math.Abs(v.AtVec(a))) })
	top := math.Abs(v.AtVec(idx[0]))
	if top == 0 {
		return label
	}
	sign := math.Copysign(1, v.AtVec(idx[0]))
	var parts []string
	for _, j := range idx[:min(2, len(idx))] {
		l := sign * v.AtVec(j)
		if math.Abs(l) < top/5 {
			break
		}
		word := "more "
		if l < 0 {
			word = "fewer "
		}
		parts = append(parts, word+features[j])
	}
	return fmt.Sprintf("%s → (%s)", strings.Join(parts, ", "), label)
}

func palette(i int) color.Color {
	cs := []color.RGBA{{31, 119, 180, 200}, {255, 127, 14, 200}, {44, 160, 44, 200}, {214, 39, 40, 200}, {148, 103, 189, 200},
		{140, 86, 75, 200}, {227, 119, 194, 200}, {127, 127, 127, 200}, {188, 189, 34, 200}, {23, 190, 207, 200}}
	return cs[i%len(cs)]
}

func render(p *plot.Plot, wIn, hIn float64) ([]byte, error) {
	c := vgimg.New(vg.Length(wIn)*vg.Inch, vg.Length(hIn)*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// featureLabels names the columns of f for people (their descriptions:
// "purchases", "home/decor").
func featureLabels(f *Features) []string {
	out := make([]string, len(f.Names))
	for i, n := range f.Names {
		out[i] = cmp.Or(n.Description, n.Name)
	}
	return out
}
