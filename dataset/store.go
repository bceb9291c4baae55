package dataset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"path"
	"strings"
	"time"
)

// Store is the plugin contract for object storage. Keys are slash-separated
// paths relative to the store's root; they never start with a slash and never
// contain "." or ".." elements. Implementations are safe for concurrent use.
//
// Every implementation runs the conformance suite in dataset/storetest.
type Store interface {
	// Location is the URL of the store's root, such as "file:///data" or
	// "s3://bucket/prefix". Location + "/" + key names an object.
	Location() string

	// List yields the objects whose keys start with prefix, in lexical key
	// order. A prefix that matches nothing yields nothing.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]

	// Stat returns the metadata of key, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// Open opens key for random access. Reads through the returned Object
	// use ctx: once ctx is done they fail. The caller closes the Object.
	Open(ctx context.Context, key string) (Object, error)

	// Put writes r to key, replacing any object there. Readers see either
	// the old object or the whole new one, never a partial write: if ctx is
	// cancelled or r fails, no object is written.
	Put(ctx context.Context, key string, r io.Reader) error

	// PutIfAbsent writes r to key only if key does not exist, atomically:
	// of two concurrent callers, one fails with an error wrapping ErrExist.
	PutIfAbsent(ctx context.Context, key string, r io.Reader) error

	// Delete removes key. Deleting a key that does not exist is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Object is an open object for random access. It is an io.ReaderAt whose
// ReadAt follows io.ReaderAt's rules (io.EOF at the end).
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	ETag    string // opaque version tag; may be empty for stores without one
}

// CheckKey reports whether key is a valid object key (see Store).
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "\\") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	if path.Clean(key) != key {
		return fmt.Errorf("%w: %q is not clean", ErrBadKey, key)
	}
	for _, elem := range strings.Split(key, "/") {
		if elem == "." || elem == ".." {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// ReadAll reads the whole object at key.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	obj, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	buf := make([]byte, obj.Size())
	n, err := obj.ReadAt(buf, 0)
	if err == io.EOF && int64(n) == obj.Size() {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", s.Location(), key, err)
	}
	return buf, nil
}

// PutBytes writes b to key, replacing any object there.
func PutBytes(ctx context.Context, s Store, key string, b []byte) error {
	return s.Put(ctx, key, bytes.NewReader(b))
}

// Join joins key elements with slashes, skipping empty ones.
func Join(elem ...string) string {
	var parts []string
	for _, e := range elem {
		e = strings.Trim(e, "/")
		if e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/")
}

// ContextReader returns a reader of r whose reads fail once ctx is done, so
// that a backend's Put of a long stream stops promptly.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader fails reads once ctx is done, so that a long copy stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ChildURL returns the URL of name under base, keeping base's query
// parameters (s3://b/state?endpoint=E and audit give
// s3://b/state/audit?endpoint=E).
func ChildURL(base, name string) string {
	u, q, _ := strings.Cut(base, "?")
	if q != "" {
		q = "?" + q
	}
	return strings.TrimRight(u, "/") + "/" + name + q
}

// SiblingURL names the table next to a table URL: .../events -> .../name,
// keeping any query.
func SiblingURL(table, name string) string {
	u, q, _ := strings.Cut(table, "?")
	if q != "" {
		q = "?" + q
	}
	u = strings.TrimRight(u, "/")
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[:i+1] + name + q
	}
	return name + q
}
