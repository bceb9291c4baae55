package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// tmpPrefix marks the temporary files of in-progress writes. List skips them.
const tmpPrefix = ".veil-tmp-"

// FileStore is a Store over a directory of the local file system, the
// embedded default. Writes go to a temporary file in the target directory and
// are renamed into place, so readers never see a partial object.
type FileStore struct {
	root string // absolute, cleaned
}

// NewFileStore returns a store rooted at dir. Directories are made when the
// first object is written below them.
func NewFileStore(dir string) (*FileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", dir, err)
	}
	return &FileStore{root: abs}, nil
}

// Root returns the directory of the store.
func (s *FileStore) Root() string { return s.root }

// Location returns the file:// URL of the root.
func (s *FileStore) Location() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(s.root)}).String()
}

func (s *FileStore) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *FileStore) notExist(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errIsDir) {
		return fmt.Errorf("%s/%s: %w", s.Location(), key, ErrNotExist)
	}
	return fmt.Errorf("%s/%s: %w", s.Location(), key, err)
}

var errIsDir = errors.New("is a directory")

// Stat implements Store.
func (s *FileStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err == nil && fi.IsDir() {
		err = errIsDir
	}
	if err != nil {
		return ObjectInfo{}, s.notExist(key, err)
	}
	return fileInfo(key, fi), nil
}

func fileInfo(key string, fi fs.FileInfo) ObjectInfo {
	return ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime().UTC(),
		ETag:    fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size()),
	}
}

// List implements Store. It walks the directory tree below the deepest
// directory named by prefix.
func (s *FileStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		dir := s.root
		if i := strings.LastIndex(prefix, "/"); i >= 0 {
			dir = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
		}
		var infos []ObjectInfo
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return filepath.SkipAll
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
				return nil
			}
			rel, err := filepath.Rel(s.root, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while listing
				}
				return err
			}
			infos = append(infos, fileInfo(key, fi))
			return nil
		})
		if err != nil {
			yield(ObjectInfo{}, fmt.Errorf("listing %s/%s: %w", s.Location(), prefix, err))
			return
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

// Open implements Store.
func (s *FileStore) Open(ctx context.Context, key string) (Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, s.notExist(key, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = errIsDir
	}
	if err != nil {
		f.Close()
		return nil, s.notExist(key, err)
	}
	return &fileObject{ctx: ctx, f: f, size: fi.Size()}, nil
}

type fileObject struct {
	ctx  context.Context
	f    *os.File
	size int64
}

func (o *fileObject) ReadAt(p []byte, off int64) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.f.ReadAt(p, off)
}
func (o *fileObject) Size() int64  { return o.size }
func (o *fileObject) Close() error { return o.f.Close() }

// writeTemp copies r into a new temporary file beside the target of key and
// returns its path. The caller renames or removes it.
func (s *FileStore) writeTemp(ctx context.Context, key string, r io.Reader) (target, tmp string, err error) {
	target, err = s.path(key)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", "", fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	return target, f.Name(), nil
}

// Put implements Store: it writes a temporary file and renames it into place.
func (s *FileStore) Put(ctx context.Context, key string, r io.Reader) error {
	target, tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	return nil
}

// PutIfAbsent implements Store: the complete temporary file is hard-linked to
// the target name, which fails atomically if the name exists.
func (s *FileStore) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	target, tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	if err := os.Link(tmp, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s/%s: %w", s.Location(), key, ErrExist)
		}
		return fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	return nil
}

// Delete implements Store. Emptied directories are removed up to the root.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s/%s: %w", s.Location(), key, err)
	}
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or gone
		}
	}
	return nil
}
