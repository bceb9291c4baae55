package release

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
)

// subjectKey is the column the events, consent and erasure contracts key
// subjects by: a catalog holds none.
const subjectKey = "subject_id"

// CheckCatalog checks that catalog, which a job over tables names as the
// shop's public product catalog, is one before anything reads it: its
// items and categories are released as public, without DP and before
// consent. It must be a committed table (or a file of one) whose veil
// manifest declares the catalog contract and names no population, whose
// files have no subject_id column, and that is not a table the job reads
// subjects from (the events, or a prepared table, and their consent and
// erasure tables), inside one or holding one (compared as canonical URLs,
// and as the tables that hold them). A catalog that fails is refused
// with ErrNotCatalog, naming it as given.
func CheckCatalog(ctx context.Context, catalog string, tables privacy.JobTables, opt dataset.URLOptions) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("catalog %s: %w: %s", catalog, ErrNotCatalog, fmt.Sprintf(format, args...))
	}
	table, m, err := budget.Table(ctx, catalog, opt)
	if err != nil {
		return fmt.Errorf("catalog %s: %w", catalog, err)
	}
	private, err := subjectTables(ctx, tables, opt)
	if err != nil {
		return err
	}
	for _, p := range private {
		if overlaps(catalog, p) || overlaps(table, p) {
			return refuse("it is the subjects' data %s, a part of it or a folder that holds it, not the shop's product list", p)
		}
	}
	switch {
	case m == nil:
		return refuse("no veil manifest declares it a catalog (veil generate and veil pseudonymize write the shop's catalog with one)")
	case m.Contract != dataset.CatalogContract.Name:
		contract := m.Contract
		if contract == "" {
			contract = "no"
		}
		return refuse("its manifest declares %s contract, not %s", contract, dataset.CatalogContract.Name)
	case m.Identity != "":
		return refuse("its manifest names a population of subjects (%s): a catalog is about products", m.Identity)
	}
	ref, err := open.Ref(ctx, catalog, opt)
	if err != nil {
		return err
	}
	keys, err := dataset.Inputs(ctx, ref, dataset.Window{})
	if err != nil {
		return fmt.Errorf("catalog %s: %w", catalog, err)
	}
	for _, k := range keys {
		f, err := dataset.OpenParquet(ctx, ref.Store, k, dataset.CatalogContract)
		if err != nil {
			return fmt.Errorf("catalog %s: %w", catalog, err)
		}
		_, subjects := f.File().Schema().Lookup(subjectKey)
		f.Close()
		if subjects {
			return refuse("%s/%s has a %s column: a catalog holds no subjects", ref.Store.Location(), k, subjectKey)
		}
	}
	return nil
}

// subjectTables lists the tables a job reads subjects' data from: its
// events (or prepared) table and its consent and erasure tables, and,
// when the job names a part of a committed table, that table and the
// consent and erasure tables beside it.
func subjectTables(ctx context.Context, t privacy.JobTables, opt dataset.URLOptions) ([]string, error) {
	if t.Events == "" {
		return nil, nil
	}
	var out []string
	add := func(events, consent, erasure string) {
		out = append(out, events, cmp.Or(consent, dataset.SiblingURL(events, "consent")), cmp.Or(erasure, dataset.SiblingURL(events, "erasure")))
	}
	add(t.Events, t.Consent, t.Erasure)
	table, m, err := budget.Table(ctx, t.Events, opt)
	if err != nil {
		return nil, fmt.Errorf("finding the table that holds %s: %w", t.Events, err)
	}
	if m != nil && dataset.CanonicalURL(table) != dataset.CanonicalURL(t.Events) {
		add(table, t.Consent, t.Erasure)
	}
	return out, nil
}

// overlaps reports whether a and b are one table, or one holds the other,
// by their canonical URLs.
func overlaps(a, b string) bool {
	ca, cb := dataset.CanonicalURL(a), dataset.CanonicalURL(b)
	return ca == cb || strings.HasPrefix(ca, cb+"/") || strings.HasPrefix(cb, ca+"/")
}
