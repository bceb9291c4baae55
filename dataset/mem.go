package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemStore is an in-memory Store for unit tests. It is not a substitute for
// a real store in integration tests.
type MemStore struct {
	name string
	mu   sync.Mutex
	objs map[string]memObject
}

type memObject struct {
	data    []byte
	modTime time.Time
	etag    string
}

// NewMemStore returns an empty store named name (its location is mem://name).
func NewMemStore(name string) *MemStore {
	return &MemStore{name: name, objs: make(map[string]memObject)}
}

// Location implements Store.
func (s *MemStore) Location() string { return "mem://" + s.name }

// List implements Store.
func (s *MemStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		s.mu.Lock()
		var infos []ObjectInfo
		for k, o := range s.objs {
			if strings.HasPrefix(k, prefix) {
				infos = append(infos, o.info(k))
			}
		}
		s.mu.Unlock()
		sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

func (o memObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag}
}

func (s *MemStore) get(key string) (memObject, error) {
	if err := CheckKey(key); err != nil {
		return memObject{}, err
	}
	s.mu.Lock()
	o, ok := s.objs[key]
	s.mu.Unlock()
	if !ok {
		return memObject{}, fmt.Errorf("%s/%s: %w", s.Location(), key, ErrNotExist)
	}
	return o, nil
}

// Stat implements Store.
func (s *MemStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	o, err := s.get(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return o.info(key), nil
}

// Open implements Store.
func (s *MemStore) Open(ctx context.Context, key string) (Object, error) {
	o, err := s.get(key)
	if err != nil {
		return nil, err
	}
	return &memReader{ctx: ctx, r: bytes.NewReader(o.data)}, nil
}

type memReader struct {
	ctx context.Context
	r   *bytes.Reader
}

func (m *memReader) ReadAt(p []byte, off int64) (int, error) {
	if err := m.ctx.Err(); err != nil {
		return 0, err
	}
	return m.r.ReadAt(p, off)
}
func (m *memReader) Size() int64  { return m.r.Size() }
func (m *memReader) Close() error { return nil }

func (s *MemStore) read(ctx context.Context, key string, r io.Reader) (memObject, error) {
	if err := CheckKey(key); err != nil {
		return memObject{}, err
	}
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return memObject{}, fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	sum := sha256.Sum256(data)
	return memObject{data: data, modTime: time.Now().UTC(), etag: hex.EncodeToString(sum[:8])}, nil
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, key string, r io.Reader) error {
	o, err := s.read(ctx, key, r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.objs[key] = o
	s.mu.Unlock()
	return nil
}

// PutIfAbsent implements Store.
func (s *MemStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	o, err := s.read(ctx, key, r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok {
		return fmt.Errorf("%s/%s: %w", s.Location(), key, ErrExist)
	}
	s.objs[key] = o
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.objs, key)
	s.mu.Unlock()
	return nil
}
