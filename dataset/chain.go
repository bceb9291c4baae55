package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrChainBroken is returned when a hash chain was edited: a record changed,
// deleted (the last one too), inserted or moved.
var ErrChainBroken = errors.New("hash chain is broken")

// Chain is an append-only, hash-chained log of JSON records in a store: one
// object per record, PREFIX/NNNNNNNNNN.json, each holding the SHA-256 of the
// previous object's bytes in its "prev_sha256" field, created with
// PutIfAbsent so that two writers can never both append record n. The budget
// ledger and the audit log are chains.
//
// A hash chain alone cannot tell a deleted last record from one never
// written, so each append also writes PREFIX/_head.json, the sequence number
// and hash of the newest record. Read requires the head to name a record
// that exists with that hash (it may lag behind: a writer that crashed
// between the two writes, or two racing writers), so truncating the chain,
// or deleting the head, is detected.
type Chain struct {
	Store  Store
	Prefix string
}

// ChainEntry is one record as stored.
type ChainEntry struct {
	Seq  int
	Key  string
	Data []byte
	SHA  string // of Data
}

type chainHeader struct {
	Seq  int    `json:"seq"`
	Prev string `json:"prev_sha256"`
}

func (c Chain) key(seq int) string { return Join(c.Prefix, fmt.Sprintf("%010d.json", seq)) }

func (c Chain) headKey() string { return Join(c.Prefix, "_head.json") }

type chainHead struct {
	Seq    int    `json:"seq"`
	SHA256 string `json:"sha256"`
}

func (c Chain) listPrefix() string {
	if p := strings.Trim(c.Prefix, "/"); p != "" {
		return p + "/"
	}
	return ""
}

// Read returns every record in order after checking the chain: record n has
// key n, field seq n and the hash of record n-1. The first bad record is
// named in the error. The head is read before the records: writers write a
// record before moving the head, so the head can only lag behind what the
// listing finds, even while others append.
func (c Chain) Read(ctx context.Context) ([]ChainEntry, error) {
	for attempt := 1; ; attempt++ {
		head, err := c.readHead(ctx)
		if err != nil {
			return nil, err
		}
		out, err := c.readRecords(ctx)
		if err != nil {
			return out, err
		}
		if head == nil && len(out) > 0 && attempt < 3 {
			continue // a first writer created the head after we looked
		}
		return out, c.checkHead(head, out)
	}
}

func (c Chain) readRecords(ctx context.Context) ([]ChainEntry, error) {
	var out []ChainEntry
	prev := ""
	for info, err := range c.Store.List(ctx, c.listPrefix()) {
		if err != nil {
			return nil, err
		}
		if info.Key == c.headKey() {
			continue
		}
		data, err := ReadAll(ctx, c.Store, info.Key)
		if err != nil {
			return nil, err
		}
		seq := len(out) + 1
		var h chainHeader
		if err := json.Unmarshal(data, &h); err != nil {
			return out, fmt.Errorf("%s/%s: %w: record %d is not JSON: %v", c.Store.Location(), info.Key, ErrChainBroken, seq, err)
		}
		if info.Key != c.key(seq) || h.Seq != seq {
			return out, fmt.Errorf("%s/%s: %w: record %d is missing or out of place (found seq %d)", c.Store.Location(), info.Key, ErrChainBroken, seq, h.Seq)
		}
		if h.Prev != prev {
			return out, fmt.Errorf("%s/%s: %w: record %d does not follow record %d (edited, inserted or reordered)", c.Store.Location(), info.Key, ErrChainBroken, seq, seq-1)
		}
		sum := sha256.Sum256(data)
		prev = hex.EncodeToString(sum[:])
		out = append(out, ChainEntry{Seq: seq, Key: info.Key, Data: data, SHA: prev})
	}
	return out, nil
}

// readHead reads the head; nil when there is none. A head that another
// writer replaces while it is read (a changed ETag) is read again.
func (c Chain) readHead(ctx context.Context) (*chainHead, error) {
	loc := c.Store.Location() + "/" + c.headKey()
	for attempt := 1; ; attempt++ {
		data, err := ReadAll(ctx, c.Store, c.headKey())
		switch {
		case errors.Is(err, ErrNotExist):
			return nil, nil
		case errors.Is(err, ErrExist) && attempt < 10:
			continue
		case err != nil:
			return nil, err
		}
		var h chainHead
		if err := json.Unmarshal(data, &h); err != nil || h.Seq < 0 {
			return nil, fmt.Errorf("%s: %w: the head is not a head (%q)", loc, ErrChainBroken, data)
		}
		return &h, nil
	}
}

// checkHead checks that the head names an existing record by its hash.
func (c Chain) checkHead(h *chainHead, records []ChainEntry) error {
	loc := c.Store.Location() + "/" + c.headKey()
	if h == nil {
		if len(records) == 0 {
			return nil
		}
		return fmt.Errorf("%s: %w: the head is missing while %d records exist (deleted)", loc, ErrChainBroken, len(records))
	}
	if h.Seq > len(records) {
		return fmt.Errorf("%s: %w: the head names record %d but the chain ends at record %d (the last records were deleted)", loc, ErrChainBroken, h.Seq, len(records))
	}
	if h.Seq > 0 && records[h.Seq-1].SHA != h.SHA256 {
		return fmt.Errorf("%s: %w: record %d does not have the hash the head recorded (edited)", loc, ErrChainBroken, h.Seq)
	}
	return nil
}

// Append reads the chain, calls build with the records so far, the next
// sequence number and the previous hash, and stores what build returns
// (which must carry seq and prev_sha256). When another writer appended
// first, it reads again and calls build again, up to 100 times. build may
// return ErrNoAppend to append nothing.
func (c Chain) Append(ctx context.Context, build func(records []ChainEntry, seq int, prev string) ([]byte, error)) ([]byte, error) {
	for range 100 {
		records, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		prev := ""
		if n := len(records); n > 0 {
			prev = records[n-1].SHA
		}
		data, err := build(records, len(records)+1, prev)
		if err != nil {
			return nil, err
		}
		if len(records) == 0 {
			// The head exists before the first record, so that a missing
			// head always means a deleted one (concurrent first writers
			// race here harmlessly).
			head, _ := json.Marshal(chainHead{})
			if err := c.Store.PutIfAbsent(ctx, c.headKey(), bytes.NewReader(head)); err != nil && !errors.Is(err, ErrExist) {
				return nil, err
			}
		}
		err = c.Store.PutIfAbsent(ctx, c.key(len(records)+1), strings.NewReader(string(data)))
		if errors.Is(err, ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		head, _ := json.Marshal(chainHead{Seq: len(records) + 1, SHA256: hex.EncodeToString(sum[:])})
		if err := PutBytes(ctx, c.Store, c.headKey(), head); err != nil {
			return nil, fmt.Errorf("record %d is written but the head is not: %w", len(records)+1, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("%s/%s: too many concurrent appends", c.Store.Location(), c.Prefix)
}
