package open_test

import (
	"context"
	"errors"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

func TestOpenStoreURLs(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"", "ftp://host/x", "file://host/x", "s3://", "s3://b/p?bogus=1", "s3://b/p?path_style=maybe", "mem://unknown"} {
		if _, err := open.Store(ctx, raw, dataset.URLOptions{}); !errors.Is(err, dataset.ErrBadURL) {
			t.Errorf("open.Store(%q): %v, want ErrBadURL", raw, err)
		}
	}
	dir := t.TempDir()
	s, err := open.Store(ctx, "file://"+dir, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Location() != "file://"+dir {
		t.Errorf("Location() = %s", s.Location())
	}
	ref, err := open.Ref(ctx, dir+"/sub/events.parquet", dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Key != "events.parquet" || ref.Store.Location() != "file://"+dir+"/sub" {
		t.Errorf("open.Ref = %s + %q", ref.Store.Location(), ref.Key)
	}
}
