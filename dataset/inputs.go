package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Window selects Hive-style date partitions (a path element "dt=YYYY-MM-DD")
// from From to To, both inclusive. A zero bound is open. Files outside any
// dt= partition are always selected.
type Window struct {
	From, To time.Time
}

// Contains reports whether the day d (UTC) is inside the window.
func (w Window) Contains(d time.Time) bool {
	d = d.UTC().Truncate(24 * time.Hour)
	if !w.From.IsZero() && d.Before(w.From.UTC().Truncate(24*time.Hour)) {
		return false
	}
	if !w.To.IsZero() && d.After(w.To.UTC().Truncate(24*time.Hour)) {
		return false
	}
	return true
}

// Partition returns the date of the dt= path element of key, if it has one.
func Partition(key string) (time.Time, bool, error) {
	for _, elem := range strings.Split(key, "/") {
		v, ok := strings.CutPrefix(elem, "dt=")
		if !ok {
			continue
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: partition %q in %q is not dt=YYYY-MM-DD", ErrBadKey, elem, key)
		}
		return d, true, nil
	}
	return time.Time{}, false, nil
}

// Inputs lists the Parquet files that ref names, in key order: ref.Key itself
// if it is an object; else the files of the committed output under it (its
// manifest decides); else, for data veil did not write, every .parquet object
// below it whose path has no hidden element ("_" or "." first). Files in a
// dt= partition outside w are left out.
func Inputs(ctx context.Context, ref Ref, w Window) ([]string, error) {
	s := ref.Store
	if ref.Key != "" {
		if _, err := s.Stat(ctx, ref.Key); err == nil {
			return []string{ref.Key}, nil
		} else if !errors.Is(err, ErrNotExist) {
			return nil, err
		}
	}
	var keys []string
	m, err := ReadManifest(ctx, s, ref.Key)
	switch {
	case err == nil:
		for _, f := range m.Files {
			if strings.HasSuffix(f.Key, ".parquet") {
				keys = append(keys, Join(ref.Key, f.Key))
			}
		}
	case errors.Is(err, ErrNotExist):
		prefix := ref.Key
		if prefix != "" {
			prefix += "/"
		}
		for info, err := range s.List(ctx, prefix) {
			if err != nil {
				return nil, err
			}
			rel := strings.TrimPrefix(info.Key, prefix)
			if !strings.HasSuffix(rel, ".parquet") || hidden(rel) {
				continue
			}
			keys = append(keys, info.Key)
		}
	default:
		return nil, err
	}
	selected := keys[:0]
	for _, k := range keys {
		d, ok, err := Partition(strings.TrimPrefix(k, ref.Key))
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", s.Location(), k, err)
		}
		if !ok || w.Contains(d) {
			selected = append(selected, k)
		}
	}
	if len(selected) == 0 {
		return nil, fmt.Errorf("%s: %w: no Parquet files in the window", ref, ErrNotExist)
	}
	return selected, nil
}

func hidden(rel string) bool {
	for _, elem := range strings.Split(rel, "/") {
		if strings.HasPrefix(elem, "_") || strings.HasPrefix(elem, ".") {
			return true
		}
	}
	return false
}

// Ref names an object or a prefix inside a store.
type Ref struct {
	Store Store
	Key   string // "" for the store's root
}

func (r Ref) String() string {
	if r.Key == "" {
		return r.Store.Location()
	}
	return r.Store.Location() + "/" + r.Key
}

// Base returns the last element of the key, or of the store location.
func (r Ref) Base() string {
	if r.Key != "" {
		return path.Base(r.Key)
	}
	return path.Base(r.Store.Location())
}

// Fingerprint identifies the contents of Parquet files cheaply: the SHA-256
// of each key, its size and its footer (the file metadata, with every
// column chunk's offsets, sizes and statistics), in key order. Rewriting a
// file with other rows changes it; reading the data pages is not needed.
func Fingerprint(ctx context.Context, s Store, keys []string) (string, error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		obj, err := s.Open(ctx, k)
		if err != nil {
			return "", err
		}
		size := obj.Size()
		var tail [8]byte
		if size >= 12 {
			_, err = obj.ReadAt(tail[:], size-8)
		}
		n := int64(binary.LittleEndian.Uint32(tail[:4]))
		footer := []byte{}
		if err == nil && string(tail[4:]) == "PAR1" && n > 0 && n <= size-12 && n < 64<<20 {
			footer = make([]byte, n)
			_, err = obj.ReadAt(footer, size-8-n)
		}
		obj.Close()
		if err != nil {
			return "", fmt.Errorf("%s/%s: %w", s.Location(), k, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", k, size)
		h.Write(footer)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
