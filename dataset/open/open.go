// Package open opens veil's object stores by URL: it parses a store URL or
// path, applies the URL options that cover it (scoped S3 settings and
// client-side encryption), and hands it to the backend of its scheme:
// dataset's file and in-memory stores, or dataset/s3. It sits above the
// backends so that package dataset, the store contract, depends on none of
// them (and not on the AWS SDK).
package open

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/crypt"
	"github.com/veil-privacy/veil/dataset/s3"
)

// Store opens the store whose root the URL names:
//
//	/path, ./path, file:///path   a local directory (the default)
//	s3://bucket/prefix            S3; query parameters endpoint, region,
//	                              path_style=true|false override the
//	                              environment (AWS_ENDPOINT_URL_S3,
//	                              AWS_ENDPOINT_URL, AWS_REGION, ...);
//	                              sse=AES256|aws:kms, sse_kms_key_id and
//	                              allow_http=true override opt.S3
//	mem://name                    an in-memory store (tests)
//
// Path-style addressing is on by default when an endpoint is set, since
// S3-compatible servers expect it.
func Store(ctx context.Context, raw string, opt dataset.URLOptions) (dataset.Store, error) {
	opt = opt.For(raw)
	s, err := openStore(ctx, raw, opt)
	if err != nil || opt.Encryption == nil {
		return s, err
	}
	return crypt.New(s, *opt.Encryption)
}

func openStore(ctx context.Context, raw string, opt dataset.URLOptions) (dataset.Store, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", dataset.ErrBadURL)
	}
	if !strings.Contains(raw, "://") {
		return dataset.NewFileStore(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", dataset.ErrBadURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%w: %s: file URLs take no host (use file:///abs/path)", dataset.ErrBadURL, raw)
		}
		return dataset.NewFileStore(filepath.FromSlash(u.Path))
	case "s3":
		return openS3(ctx, u, opt)
	case "mem":
		if s, ok := opt.Mem[u.Host]; ok && strings.Trim(u.Path, "/") == "" {
			return s, nil
		}
		return nil, fmt.Errorf("%w: %s: unknown in-memory store", dataset.ErrBadURL, raw)
	}
	return nil, fmt.Errorf("%w: %s: unknown scheme %q (want file://, s3:// or a path)", dataset.ErrBadURL, raw, u.Scheme)
}

func openS3(ctx context.Context, u *url.URL, opt dataset.URLOptions) (dataset.Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s: no bucket", dataset.ErrBadURL, u.Redacted())
	}
	cfg := s3.DefaultConfig(u.Host, u.Path)
	q := u.Query()
	cfg.Endpoint = q.Get("endpoint")
	if cfg.Endpoint == "" {
		cfg.Endpoint = opt.Env("AWS_ENDPOINT_URL_S3")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = opt.Env("AWS_ENDPOINT_URL")
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: path_style=%q is not a boolean", dataset.ErrBadURL, u.Redacted(), v)
		}
		cfg.PathStyle = b
	}
	cfg.Region = q.Get("region")
	cfg.Log = opt.Log
	cfg.SSE, cfg.SSEKMSKeyID, cfg.AllowHTTP = opt.S3.SSE, opt.S3.SSEKMSKeyID, opt.S3.AllowHTTP
	if v := q.Get("sse"); v != "" {
		cfg.SSE = v
	}
	if v := q.Get("sse_kms_key_id"); v != "" {
		cfg.SSEKMSKeyID = v
	}
	if v := q.Get("allow_http"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: allow_http=%q is not a boolean", dataset.ErrBadURL, u.Redacted(), v)
		}
		cfg.AllowHTTP = b
	}
	for k := range q {
		if k != "endpoint" && k != "path_style" && k != "region" && k != "sse" && k != "sse_kms_key_id" && k != "allow_http" {
			return nil, fmt.Errorf("%w: %s: unknown parameter %q", dataset.ErrBadURL, u.Redacted(), k)
		}
	}
	return s3.New(ctx, cfg)
}

// Ref opens the store of the parent of the URL and returns a Ref to its
// last element, which may be an object or a prefix. A URL that names a
// bucket or a file system root has an empty key.
func Ref(ctx context.Context, raw string, opt dataset.URLOptions) (dataset.Ref, error) {
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return dataset.Ref{}, fmt.Errorf("%w: %w", dataset.ErrBadURL, err)
		}
		raw = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	// The settings of the URL itself, not of its parent directory.
	opt = opt.For(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return dataset.Ref{}, fmt.Errorf("%w: %w", dataset.ErrBadURL, err)
	}
	clean := path.Clean("/" + u.Path)
	dir, base := path.Split(clean)
	if base == "" || u.Scheme == "mem" {
		s, err := Store(ctx, raw, opt)
		return dataset.Ref{Store: s}, err
	}
	parent := *u
	parent.Path = dir
	s, err := Store(ctx, parent.String(), opt)
	if err != nil {
		return dataset.Ref{}, err
	}
	return dataset.Ref{Store: s, Key: base}, nil
}

// DatePartition returns the store and prefix of a date's partition
// (URL/dt=DATE) of a table.
func DatePartition(ctx context.Context, url string, day time.Time, opt dataset.URLOptions) (dataset.Store, string, error) {
	ref, err := Ref(ctx, url, opt)
	if err != nil {
		return nil, "", err
	}
	return ref.Store, dataset.Join(ref.Key, "dt="+day.UTC().Format(time.DateOnly)), nil
}
