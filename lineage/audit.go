package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// AuditRecord is one entry of the audit log: who ran what, on which data,
// for which purposes, and what came of it.
type AuditRecord struct {
	Seq         int       `json:"seq"`
	Time        time.Time `json:"time"`
	Principal   string    `json:"principal"`
	Action      string    `json:"action"` // run, step
	Job         string    `json:"job"`
	RunID       string    `json:"run_id"`
	LogicalDate string    `json:"logical_date"`
	Reads       []string  `json:"reads,omitempty"`
	Writes      []string  `json:"writes,omitempty"`
	Purposes    []string  `json:"purposes,omitempty"`
	RowsRead    int64     `json:"rows_read,omitempty"`
	RowsKept    int64     `json:"rows_kept,omitempty"`
	Outcome     string    `json:"outcome"` // started, completed, failed, aborted, no-op
	Error       string    `json:"error,omitempty"`
	PrevSHA256  string    `json:"prev_sha256"`
}

// AuditLog is the append-only, hash-chained audit log under a prefix of a
// store (see dataset.Chain).
type AuditLog struct{ chain dataset.Chain }

// OpenAudit returns the audit log at prefix in s.
func OpenAudit(s dataset.Store, prefix string) *AuditLog {
	return &AuditLog{chain: dataset.Chain{Store: s, Prefix: prefix}}
}

// Principal names who runs veil: VEIL_PRINCIPAL if set (a scheduler's
// service account), else the operating system user.
func Principal(getenv func(string) string) string {
	if p := getenv("VEIL_PRINCIPAL"); p != "" {
		return p
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// Append adds a record, filling its sequence number and chain hash.
func (a *AuditLog) Append(ctx context.Context, r AuditRecord) error {
	_, err := a.chain.Append(ctx, func(_ []dataset.ChainEntry, seq int, prev string) ([]byte, error) {
		r.Seq, r.PrevSHA256 = seq, prev
		if r.Time.IsZero() {
			r.Time = time.Now().UTC()
		}
		b, err := json.Marshal(r)
		return append(b, '\n'), err
	})
	return err
}

// ErrNoAuditLog is returned (wrapped) by Verify when there is no audit log
// at all where it looks: no record and no head. Every append writes both, so
// an empty place is a wrong URL, not an empty log.
var ErrNoAuditLog = errors.New("no audit log")

// Verify checks the whole log and returns its records; a broken chain is an
// error (dataset.ErrChainBroken) naming the first bad record, and a place
// without any log is ErrNoAuditLog.
func (a *AuditLog) Verify(ctx context.Context) ([]AuditRecord, error) {
	entries, err := a.chain.Read(ctx)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		head := dataset.Join(a.chain.Prefix, "_head.json")
		_, err := a.chain.Store.Stat(ctx, head)
		switch {
		case errors.Is(err, dataset.ErrNotExist):
			loc := a.chain.Store.Location()
			if a.chain.Prefix != "" {
				loc += "/" + a.chain.Prefix
			}
			return nil, fmt.Errorf("%w at %s", ErrNoAuditLog, loc)
		case err != nil:
			return nil, err
		}
	}
	out := make([]AuditRecord, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal(e.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", e.Key, dataset.ErrChainBroken, err)
		}
	}
	return out, nil
}
