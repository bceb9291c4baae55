// Package storetest is the conformance suite that every dataset.Store
// implementation runs.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/veil-privacy/veil/dataset"
)

// Options tune the suite to a store.
type Options struct {
	// LargeSize is the size of the large-object test, chosen to cross the
	// store's multipart threshold. Zero means 1 MiB.
	LargeSize int
}

// Run runs the conformance suite. newStore returns an empty store for each
// subtest.
func Run(t *testing.T, newStore func(t *testing.T) dataset.Store, opt Options) {
	if opt.LargeSize == 0 {
		opt.LargeSize = 1 << 20
	}
	ctx := context.Background()
	tests := []struct {
		name string
		fn   func(t *testing.T, s dataset.Store)
	}{
		{"PutAndReadWhole", func(t *testing.T, s dataset.Store) {
			data := []byte("hello, veil")
			must(t, dataset.PutBytes(ctx, s, "a/b/c.txt", data))
			got, err := dataset.ReadAll(ctx, s, "a/b/c.txt")
			must(t, err)
			if !bytes.Equal(got, data) {
				t.Fatalf("read %q, want %q", got, data)
			}
			info, err := s.Stat(ctx, "a/b/c.txt")
			must(t, err)
			if info.Key != "a/b/c.txt" || info.Size != int64(len(data)) {
				t.Fatalf("stat = %+v", info)
			}
		}},
		{"EmptyObject", func(t *testing.T, s dataset.Store) {
			must(t, dataset.PutBytes(ctx, s, "empty", nil))
			got, err := dataset.ReadAll(ctx, s, "empty")
			must(t, err)
			if len(got) != 0 {
				t.Fatalf("read %d bytes from an empty object", len(got))
			}
		}},
		{"RangedRead", func(t *testing.T, s dataset.Store) {
			data := random(300_000, 1)
			must(t, dataset.PutBytes(ctx, s, "r.bin", data))
			obj, err := s.Open(ctx, "r.bin")
			must(t, err)
			defer obj.Close()
			if obj.Size() != int64(len(data)) {
				t.Fatalf("size %d, want %d", obj.Size(), len(data))
			}
			for _, r := range [][2]int{{0, 10}, {12345, 70000}, {299_990, 10}, {150_000, 1}} {
				buf := make([]byte, r[1])
				n, err := obj.ReadAt(buf, int64(r[0]))
				if err != nil && !(err == io.EOF && n == r[1]) {
					t.Fatalf("ReadAt(%d, %d): %v", r[0], r[1], err)
				}
				if !bytes.Equal(buf[:n], data[r[0]:r[0]+r[1]]) {
					t.Fatalf("ReadAt(%d, %d) returned wrong bytes", r[0], r[1])
				}
			}
			buf := make([]byte, 20)
			n, err := obj.ReadAt(buf, int64(len(data)-5))
			if n != 5 || err != io.EOF {
				t.Fatalf("ReadAt past the end = %d, %v; want 5, io.EOF", n, err)
			}
			if !bytes.Equal(buf[:5], data[len(data)-5:]) {
				t.Fatal("ReadAt past the end returned wrong bytes")
			}
			if n, err := obj.ReadAt(buf, int64(len(data))); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
			}
		}},
		{"LargeObject", func(t *testing.T, s dataset.Store) {
			data := random(opt.LargeSize, 2)
			must(t, s.Put(ctx, "big/object.bin", onlyReader{bytes.NewReader(data)}))
			got, err := dataset.ReadAll(ctx, s, "big/object.bin")
			must(t, err)
			if !bytes.Equal(got, data) {
				t.Fatalf("large object round trip differs (%d bytes read)", len(got))
			}
		}},
		{"Overwrite", func(t *testing.T, s dataset.Store) {
			must(t, dataset.PutBytes(ctx, s, "k", []byte("first version")))
			must(t, dataset.PutBytes(ctx, s, "k", []byte("second")))
			got, err := dataset.ReadAll(ctx, s, "k")
			must(t, err)
			if string(got) != "second" {
				t.Fatalf("after overwrite read %q", got)
			}
		}},
		{"List", func(t *testing.T, s dataset.Store) {
			keys := []string{"p/dt=2026-01-02/b.parquet", "p/dt=2026-01-01/a.parquet", "p/x", "q/y", "pz"}
			for _, k := range keys {
				must(t, dataset.PutBytes(ctx, s, k, []byte(k)))
			}
			check := func(prefix string, want []string) {
				t.Helper()
				var got []string
				for info, err := range s.List(ctx, prefix) {
					must(t, err)
					got = append(got, info.Key)
					if info.Size != int64(len(info.Key)) {
						t.Errorf("List: %s has size %d, want %d", info.Key, info.Size, len(info.Key))
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("List(%q) = %q, want %q", prefix, got, want)
				}
			}
			check("p/", []string{"p/dt=2026-01-01/a.parquet", "p/dt=2026-01-02/b.parquet", "p/x"})
			check("p", []string{"p/dt=2026-01-01/a.parquet", "p/dt=2026-01-02/b.parquet", "p/x", "pz"})
			check("p/dt=2026-01-01/", []string{"p/dt=2026-01-01/a.parquet"})
			check("", []string{"p/dt=2026-01-01/a.parquet", "p/dt=2026-01-02/b.parquet", "p/x", "pz", "q/y"})
			check("nothing/", nil)
		}},
		{"MissingKey", func(t *testing.T, s dataset.Store) {
			if _, err := s.Stat(ctx, "no/such/key"); !errors.Is(err, dataset.ErrNotExist) {
				t.Errorf("Stat of a missing key: %v, want ErrNotExist", err)
			}
			if _, err := s.Open(ctx, "no/such/key"); !errors.Is(err, dataset.ErrNotExist) {
				t.Errorf("Open of a missing key: %v, want ErrNotExist", err)
			}
			if _, err := dataset.ReadAll(ctx, s, "missing"); !errors.Is(err, dataset.ErrNotExist) {
				t.Errorf("ReadAll of a missing key: %v, want ErrNotExist", err)
			}
		}},
		{"Delete", func(t *testing.T, s dataset.Store) {
			must(t, dataset.PutBytes(ctx, s, "d/e", []byte("x")))
			must(t, s.Delete(ctx, "d/e"))
			if _, err := s.Stat(ctx, "d/e"); !errors.Is(err, dataset.ErrNotExist) {
				t.Errorf("Stat after Delete: %v, want ErrNotExist", err)
			}
			must(t, s.Delete(ctx, "d/e")) // deleting a missing key is fine
			for info, err := range s.List(ctx, "d") {
				t.Errorf("List after Delete yields %v, %v", info.Key, err)
			}
		}},
		{"PutIfAbsent", func(t *testing.T, s dataset.Store) {
			must(t, s.PutIfAbsent(ctx, "lock", bytes.NewReader([]byte("one"))))
			err := s.PutIfAbsent(ctx, "lock", bytes.NewReader([]byte("two")))
			if !errors.Is(err, dataset.ErrExist) {
				t.Fatalf("second PutIfAbsent: %v, want ErrExist", err)
			}
			got, err := dataset.ReadAll(ctx, s, "lock")
			must(t, err)
			if string(got) != "one" {
				t.Fatalf("PutIfAbsent replaced the object: %q", got)
			}
		}},
		{"PutIfAbsentRace", func(t *testing.T, s dataset.Store) {
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.PutIfAbsent(ctx, "race", bytes.NewReader([]byte(fmt.Sprint(i))))
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, dataset.ErrExist):
					t.Errorf("PutIfAbsent: %v", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of %d concurrent PutIfAbsent calls won, want 1", wins, n)
			}
		}},
		{"CancelledPut", func(t *testing.T, s dataset.Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := s.Put(cctx, "cancelled", bytes.NewReader([]byte("data"))); err == nil {
				t.Fatal("Put with a cancelled context succeeded")
			}
			if _, err := s.Stat(ctx, "cancelled"); !errors.Is(err, dataset.ErrNotExist) {
				t.Fatalf("a cancelled Put left an object: %v", err)
			}
		}},
		{"FailedReaderLeavesNothing", func(t *testing.T, s dataset.Store) {
			must(t, dataset.PutBytes(ctx, s, "keep", []byte("old")))
			r := io.MultiReader(bytes.NewReader(random(opt.LargeSize, 3)), errReader{})
			if err := s.Put(ctx, "partial", r); err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			if _, err := s.Stat(ctx, "partial"); !errors.Is(err, dataset.ErrNotExist) {
				t.Fatalf("a failed Put left an object: %v", err)
			}
			if err := s.Put(ctx, "keep", io.MultiReader(bytes.NewReader([]byte("new")), errReader{})); err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			got, err := dataset.ReadAll(ctx, s, "keep")
			must(t, err)
			if string(got) != "old" {
				t.Fatalf("a failed overwrite changed the object to %q", got)
			}
		}},
		{"CancelledRead", func(t *testing.T, s dataset.Store) {
			must(t, dataset.PutBytes(ctx, s, "c", random(1000, 4)))
			cctx, cancel := context.WithCancel(ctx)
			obj, err := s.Open(cctx, "c")
			must(t, err)
			defer obj.Close()
			cancel()
			if _, err := obj.ReadAt(make([]byte, 10), 0); err == nil {
				t.Fatal("ReadAt after cancel succeeded")
			}
			for _, err := range s.List(cctx, "") {
				if err == nil {
					t.Fatal("List with a cancelled context yielded an object")
				}
				break
			}
		}},
		{"BadKeys", func(t *testing.T, s dataset.Store) {
			for _, k := range []string{"", "/abs", "a/../b", "../up", "a//b", "dir/", "./x"} {
				if err := dataset.PutBytes(ctx, s, k, []byte("x")); !errors.Is(err, dataset.ErrBadKey) {
					t.Errorf("Put(%q): %v, want ErrBadKey", k, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides io.Seeker and io.WriterTo so stores see a plain stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("injected read failure") }
