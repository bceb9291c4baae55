package segment

import (
	"image/color"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// Each axis of the cohort map says which features it stands for, in words,
// signed so that the strongest feature grows along the axis.
func TestAxisLabelNamesFeatures(t *testing.T) {
	v := mat.NewVecDense(4, []float64{-0.1, -0.8, 0.5, 0.05})
	got := axisLabel(1, v, 3, 4, []string{"views", "purchases", "days since the last purchase", "returns"})
	for _, want := range []string{"more purchases", "fewer days since the last purchase", "PC 1", "75%"} {
		if !strings.Contains(got, want) {
			t.Errorf("label %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "views") || strings.Contains(got, "returns") {
		t.Errorf("label %q names features that hardly load", got)
	}
	if got := axisLabel(2, v, 1, 4, nil); !strings.HasPrefix(got, "PC 2") {
		t.Errorf("without names: %q", got)
	}
}

// Every line of a monitoring bar plot has a legend entry.
func TestBarPlotLegend(t *testing.T) {
	p, err := barPlot("t", "y", "bars", []string{"a", "b"}, plotter.Values{1, 2}, color.Black, refLine{3, "warning above"}, refLine{0.3, "warning below"})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder.Canvas
	p.Draw(draw.NewCanvas(&rec, 6*vg.Inch, 4*vg.Inch))
	var texts []string
	for _, a := range rec.Actions {
		if fs, ok := a.(*recorder.FillString); ok {
			texts = append(texts, fs.String)
		}
	}
	for _, want := range []string{"bars", "warning above", "warning below"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no legend entry %q in %q", want, texts)
		}
	}
}
