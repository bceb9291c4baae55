package budget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// ErrNoIdentity is returned for a table derived from events (a prepared
// table) whose manifest does not say which population it came from: the
// ledger could not charge the right budget.
var ErrNoIdentity = fmt.Errorf("%w: the table does not carry the identity of its population", ErrPolicy)

// Identity returns the ledger key of the population that a release over
// table (an events table, or a table derived from one) is charged to, in
// order:
//
//  1. declared, the identity a job's budget section names (budget.dataset);
//  2. the identity that the table's manifest carries (veil generate and
//     veil pseudonymize write one; prepared tables carry their events');
//  3. the table's canonical URL (dataset.CanonicalURL), so that a path, its
//     absolute form and its file:// URL are one budget; for a partition
//     (dt=2026-11-01/) or a file of a table without a manifest, the
//     table's: hive segments and the file name are stripped.
//
// A prepared table whose manifest carries no identity is refused
// (ErrNoIdentity): it was written before tables carried one, and its URL
// is not its events' budget; prepare it again. Every spender calls
// Identity, so that every spelling of a table and every table derived from
// it charge the same budget.
func Identity(ctx context.Context, table, declared string, opt dataset.URLOptions) (string, error) {
	if declared != "" {
		return declared, nil
	}
	if table == "" {
		return "", fmt.Errorf("%w: no table to charge", ErrPolicy)
	}
	ref, err := open.Ref(ctx, table, opt)
	if err != nil {
		return "", err
	}
	if ref.Key != "" {
		if _, err := ref.Store.Stat(ctx, ref.Key); err == nil {
			return enclosing(ctx, table, opt, true) // one file: no manifest of its own
		}
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	switch {
	case errors.Is(err, dataset.ErrNotExist):
		return enclosing(ctx, table, opt, false)
	case err != nil:
		return "", fmt.Errorf("reading the identity of %s: %w", table, err)
	case m.Identity != "":
		return m.Identity, nil
	case strings.HasSuffix(m.Meta["job"], "-prepare"):
		return "", fmt.Errorf("%s: %w (written before prepared tables recorded it): prepare it again, or declare budget.dataset", table, ErrNoIdentity)
	}
	return dataset.CanonicalURL(table), nil
}

// enclosing returns the identity of the committed table that holds a file
// or a prefix without a manifest of its own (one file, or one dt=
// partition, of an events table): the nearest enclosing manifest's
// identity between it and its table (see tableLevels), else that table's
// canonical URL. A job pointed at a part of a table charges the table's
// budget, not a fresh one, whether or not the table has a manifest.
func enclosing(ctx context.Context, table string, opt dataset.URLOptions, file bool) (string, error) {
	at, m, err := enclosingManifest(ctx, table, opt, file)
	if err != nil {
		return "", err
	}
	if m != nil && m.Identity != "" {
		return m.Identity, nil
	}
	return dataset.CanonicalURL(at), nil
}

// Table returns the committed table that holds url, and its manifest:
// url itself when it has a manifest; for a file or a prefix without one
// (one file, or one dt= partition, of a table), the nearest enclosing
// manifest, looked for as Identity looks for the table it charges. When
// no manifest holds url (data veil did not write) the manifest is nil and
// the table is what Identity would charge: url without its file name and
// partition segments. Entry points use it to treat a part of a table as
// the table (its kind, its consent tables), as the ledger does.
func Table(ctx context.Context, url string, opt dataset.URLOptions) (string, *dataset.Manifest, error) {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return "", nil, err
	}
	file := false
	if ref.Key != "" {
		if _, err := ref.Store.Stat(ctx, ref.Key); err == nil {
			file = true
		} else if !errors.Is(err, dataset.ErrNotExist) {
			return "", nil, err
		}
	}
	if !file {
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		switch {
		case err == nil:
			return url, m, nil
		case !errors.Is(err, dataset.ErrNotExist):
			return "", nil, fmt.Errorf("reading the manifest of %s: %w", url, err)
		}
	}
	at, m, err := enclosingManifest(ctx, url, opt, file)
	if err != nil {
		return "", nil, err
	}
	if m == nil && dataset.CanonicalURL(at) == dataset.CanonicalURL(url) {
		return url, nil, nil // a table of its own, spelt as given
	}
	return at, m, nil
}

// enclosingManifest finds the nearest committed manifest above a file or
// a prefix without a manifest of its own, between it and its table (see
// tableLevels), and returns its URL and the manifest; without one, the
// table's URL and a nil manifest. Manifests are looked for no higher than
// the table (and at least in the folder that holds the part): a role may
// not read above its tables.
func enclosingManifest(ctx context.Context, table string, opt dataset.URLOptions, file bool) (string, *dataset.Manifest, error) {
	raw := table
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %w", dataset.ErrBadURL, err)
		}
		raw = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", dataset.ErrBadURL, err)
	}
	u.Path = path.Clean("/" + u.Path)
	up := func(n int) string {
		a := *u
		for range n {
			a.Path = path.Dir(a.Path)
		}
		return a.String()
	}
	levels := tableLevels(u.Path, file)
	for n := 1; n <= max(1, levels) && u.Scheme != "mem"; n++ {
		ref, err := open.Ref(ctx, up(n), opt)
		if err != nil {
			return "", nil, err
		}
		m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
		switch {
		case errors.Is(err, dataset.ErrNotExist), errors.Is(err, dataset.ErrNotCommitted):
			continue
		case err != nil:
			return "", nil, fmt.Errorf("reading the identity of the table holding %s: %w", table, err)
		}
		return up(n), m, nil
	}
	return up(levels), nil, nil
}

// tableLevels counts the trailing segments of a path that name a part of
// a table, never a table: its file name (when file) and then its Hive
// partition segments (key=value). A table that is one file therefore
// charges the folder that holds it: a budget shared by more tables than
// one is spent faster, never bypassed.
func tableLevels(p string, file bool) int {
	n := 0
	if file && p != "/" {
		p, n = path.Dir(p), 1
	}
	for p != "/" {
		if k, _, ok := strings.Cut(path.Base(p), "="); !ok || k == "" {
			break
		}
		p, n = path.Dir(p), n+1
	}
	return n
}

// Fingerprint is the SHA-256 of a run's configuration as JSON (Request.Config):
// callers clear what does not change the run (its run id) first.
func Fingerprint(config any) string {
	b, _ := json.Marshal(config)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
