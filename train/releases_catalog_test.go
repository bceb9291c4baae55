package train

import (
	"testing"

	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

// A job that names a catalog plans no partition selection before reading
// it, as its run does after reading it: the pipeline charges what runs.
func TestReleasesWithNamedCatalog(t *testing.T) {
	c := DefaultJobConfig()
	c.Events, c.Output = "shop/events", "out/models"
	c.Model.Epsilon = 4
	c.Evaluation.Curve = true
	c.Budget = &budget.Config{Ledger: "ledger", Policy: budget.Policy{Epsilon: 40, Delta: 1e-4, Period: "month"}}
	selections := func(c JobConfig) int {
		evs, _, err := c.Releases()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Mechanism == accountant.PureDelta {
				n++
			}
		}
		return n
	}
	if n := selections(c); n == 0 {
		t.Fatal("without a catalog: no partition selection planned")
	}
	c.Catalog = "shop/catalog"
	if n := selections(c); n != 0 {
		t.Errorf("with a catalog: %d partition selections planned, want none", n)
	}
	withCatalog := c.Model
	withCatalog.Catalog = []string{"a", "b"}
	want, err := withCatalog.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	named := c.Model.NamedCatalog()
	if got, _ := named.MakePlan(); got != want {
		t.Errorf("planned before reading the catalog %+v, after %+v", got, want)
	}
}
