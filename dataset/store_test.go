package dataset_test

import (
	"context"
	"errors"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/storetest"
)

func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		s, err := dataset.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		return dataset.NewMemStore(t.Name())
	}, storetest.Options{})
}

func TestS3Store(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		cfg := storetest.S3Bucket(t, "some/prefix")
		s, err := dataset.NewS3Store(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{LargeSize: 12 << 20}) // crosses the 5 MiB part size twice
}

func TestS3StoreBadSetup(t *testing.T) {
	cfg := storetest.S3Bucket(t, "")
	ctx := context.Background()
	missing := cfg
	missing.Bucket = "veil-no-such-bucket"
	if _, err := dataset.NewS3Store(ctx, missing); !errors.Is(err, dataset.ErrNoBucket) {
		t.Errorf("missing bucket: %v, want ErrNoBucket", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	if _, err := dataset.NewS3Store(ctx, cfg); err == nil {
		t.Error("wrong credentials were accepted")
	}
}

func TestOpenStoreURLs(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"", "ftp://host/x", "file://host/x", "s3://", "s3://b/p?bogus=1", "s3://b/p?path_style=maybe", "mem://unknown"} {
		if _, err := dataset.OpenStore(ctx, raw, dataset.URLOptions{}); !errors.Is(err, dataset.ErrBadURL) {
			t.Errorf("OpenStore(%q): %v, want ErrBadURL", raw, err)
		}
	}
	dir := t.TempDir()
	s, err := dataset.OpenStore(ctx, "file://"+dir, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Location() != "file://"+dir {
		t.Errorf("Location() = %s", s.Location())
	}
	ref, err := dataset.ParseRef(ctx, dir+"/sub/events.parquet", dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Key != "events.parquet" || ref.Store.Location() != "file://"+dir+"/sub" {
		t.Errorf("ParseRef = %s + %q", ref.Store.Location(), ref.Key)
	}
}
