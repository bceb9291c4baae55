package segment

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
)

// A planted skew: cohort 0 is nearly all German, cohort 1 nearly all
// Californian; the report finds both and names the jurisdictions.
func TestCompositionFindsPlantedSkew(t *testing.T) {
	f := &Features{Regions: make([]string, 400)}
	var a, b []int
	for i := range 400 {
		switch {
		case i < 200 && i%10 != 0:
			f.Regions[i] = "DE"
		case i >= 200 && i%10 != 0:
			f.Regions[i] = "US-CA"
		default:
			f.Regions[i] = "FR"
		}
		if i < 200 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	c := compose(f, []Cohort{{ID: 0, Members: a}, {ID: 1, Members: b}}, DefaultMonitorConfig())
	if c.MaxOver == nil || c.MaxOver.Ratio < 1.7 || c.MaxUnder == nil || c.MaxUnder.Ratio > 0.01 {
		t.Fatalf("composition %+v %+v", c.MaxOver, c.MaxUnder)
	}
	found := map[string]bool{}
	for _, g := range c.Groups {
		if g.Dimension == "jurisdiction" && g.Ratio > 1.7 {
			found[g.Group] = true
		}
	}
	if !found["EU/EEA (GDPR)"] || !found["US-CA (CCPA)"] {
		t.Errorf("jurisdictions over-represented: %v", found)
	}
}

// Two runs into one output: the second on a shop whose customers browse
// three times as much; drift names the views feature, and the datasheet
// and warnings carry it. A run without a previous one reports no drift.
func TestDriftAgainstPreviousRun(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, rate float64) {
		c := synth.DefaultConfig()
		c.Subjects, c.Items, c.Days, c.Groups, c.SessionRate = 1500, 200, 20, 5, rate
		s, _ := synth.New(c)
		store, _ := dataset.NewFileStore(filepath.Join(dir, name))
		if _, err := s.Write(ctx, store, "", "test"); err != nil {
			t.Fatal(err)
		}
	}
	gen("a", 0.25)
	gen("b", 0.75)
	cfg := DefaultConfig()
	cfg.Output = filepath.Join(dir, "out")
	cfg.KMeans.K = "4"
	cfg.Floor = Floor{MinSize: 40, Small: "merge"}
	cfg.Events = filepath.Join(dir, "a", "events")
	r1, err := Run(ctx, cfg, logical.AddDate(0, 0, -1), dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Monitoring == nil || r1.Monitoring.Drift != nil || r1.Monitoring.Composition == nil || len(r1.Monitoring.Composition.Groups) == 0 {
		t.Fatalf("first run monitoring %+v", r1.Monitoring)
	}
	cfg.Events = filepath.Join(dir, "b", "events")
	r2, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := r2.Monitoring.Drift
	if d == nil || d.PreviousRun != r1.RunID {
		t.Fatalf("second run drift %+v", d)
	}
	views := 0.0
	for _, f := range d.Features {
		if f.Feature == "views" {
			views = f.PSI
		}
	}
	if views < 0.2 || !strings.Contains(fmt.Sprint(r2.Monitoring.Warnings), "drifted") {
		t.Errorf("views PSI %.3f, warnings %v", views, r2.Monitoring.Warnings)
	}
	sheet := datasheet(t, r2)
	if !strings.Contains(sheet, "## Monitoring") || !strings.Contains(sheet, "PSI") {
		t.Errorf("datasheet lacks the monitoring section:\n%s", sheet)
	}
}

// A generated shop with a planted region skew (taste groups live in home
// regions): the composition report of a real run finds it and warns; the
// same shop without the skew does not.
func TestCompositionOnSkewedShop(t *testing.T) {
	run := func(skew float64) *Report {
		dir := t.TempDir()
		c := synth.DefaultConfig()
		c.Subjects, c.Items, c.Days, c.Groups, c.RegionSkew = 3000, 200, 20, 5, skew
		s, _ := synth.New(c)
		store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
		if _, err := s.Write(ctx, store, "", "test"); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Events, cfg.Output = filepath.Join(dir, "shop", "events"), filepath.Join(dir, "out")
		cfg.KMeans.K = "5"
		cfg.Floor = Floor{MinSize: 40, Small: "merge"}
		rep, err := Run(ctx, cfg, logical, dataset.URLOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	skewed, fair := run(0.9), run(0)
	so, fo := skewed.Monitoring.Composition.MaxOver, fair.Monitoring.Composition.MaxOver
	t.Logf("most over-represented: skewed %+v; fair %+v", *so, *fo)
	if so.Ratio < 2*fo.Ratio || !strings.Contains(fmt.Sprint(skewed.Monitoring.Warnings), "over-represented") {
		t.Errorf("skew not found: skewed %.2f×, fair %.2f×, warnings %v", so.Ratio, fo.Ratio, skewed.Monitoring.Warnings)
	}
	if strings.Contains(fmt.Sprint(fair.Monitoring.Warnings), "represented") {
		t.Errorf("a fair shop warns: %v", fair.Monitoring.Warnings)
	}
}
