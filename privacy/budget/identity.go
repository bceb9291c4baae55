package budget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/veil-privacy/veil/dataset"
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
//     absolute form and its file:// URL are one budget.
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
	ref, err := dataset.ParseRef(ctx, table, opt)
	if err != nil {
		return "", err
	}
	if ref.Key != "" {
		if _, err := ref.Store.Stat(ctx, ref.Key); err == nil {
			return enclosing(ctx, ref, table) // one file: no manifest of its own
		}
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	switch {
	case errors.Is(err, dataset.ErrNotExist):
		return enclosing(ctx, ref, table)
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
// identity, else that table's canonical URL. A job pointed at a part of a
// table charges the table's budget, not a fresh one. With no enclosing
// manifest it is the canonical URL of the table itself.
func enclosing(ctx context.Context, ref dataset.Ref, table string) (string, error) {
	canonical := dataset.CanonicalURL(table)
	for key := ref.Key; key != "" && key != "." && key != "/"; {
		key = path.Dir(key)
		if key == "." || key == "/" {
			key = ""
		}
		m, err := dataset.ReadManifest(ctx, ref.Store, key)
		switch {
		case errors.Is(err, dataset.ErrNotExist), errors.Is(err, dataset.ErrNotCommitted):
			continue
		case err != nil:
			return "", fmt.Errorf("reading the identity of the table holding %s: %w", table, err)
		case m.Identity != "":
			return m.Identity, nil
		}
		return strings.TrimSuffix(canonical, strings.TrimPrefix(ref.Key, key)), nil
	}
	return canonical, nil
}

// Fingerprint is the SHA-256 of a run's configuration as JSON (Request.Config):
// callers clear what does not change the run (its run id) first.
func Fingerprint(config any) string {
	b, _ := json.Marshal(config)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
