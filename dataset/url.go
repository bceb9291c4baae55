package dataset

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// URLOptions carry what opening a store URL needs from outside.
type URLOptions struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Mem resolves mem://NAME URLs (tests only); nil refuses them.
	Mem map[string]*MemStore
	// S3 holds the defaults of every s3:// URL opened with these options
	// (a pipeline spec's storage section): server-side encryption and
	// whether plain HTTP may leave the machine. URL parameters override.
	S3 S3Defaults
	// Encryption, when set, wraps every store opened: objects are written
	// envelope-encrypted with its key id (if any) and encrypted objects are
	// decrypted as they are read.
	Encryption *Encryption
	// Scoped replaces S3 and Encryption for the URLs under a prefix (the
	// longest matching prefix wins): a segregated pipeline writes each
	// zone's outputs with the zone's keys and its shared ledger with the
	// spec's.
	Scoped []ScopedOptions
	// Log receives what the stores' clients have to say (the AWS SDK's
	// warnings, such as its fallback to IMDSv1); nil discards it.
	Log *slog.Logger
}

// URLOptionsFromEnv returns the options of commands and workers: the
// environment through getenv, and client-side encryption with the keys in
// VEIL_KEYS_DIR (ID.key files), which decrypt what veil reads;
// VEIL_ENCRYPTION_KEY_ID also encrypts what it writes.
func URLOptionsFromEnv(getenv func(string) string) URLOptions {
	o := URLOptions{Getenv: getenv}
	if dir := getenv("VEIL_KEYS_DIR"); dir != "" {
		o.Encryption = &Encryption{KeyID: getenv("VEIL_ENCRYPTION_KEY_ID"), Keys: KeyDir(dir)}
	}
	return o
}

// ScopedOptions are the storage settings of the URLs under Prefix (a URL
// or a path; the query string is ignored).
type ScopedOptions struct {
	Prefix     string
	S3         S3Defaults
	Encryption *Encryption
}

// forURL returns the options that apply to raw: those of the longest
// scope whose prefix is raw or a parent of it, else o without scopes.
func (o URLOptions) forURL(raw string) URLOptions {
	if len(o.Scoped) == 0 {
		return o
	}
	u := normalURL(raw)
	best := -1
	for i, sc := range o.Scoped {
		p := normalURL(sc.Prefix)
		if (u == p || strings.HasPrefix(u, p+"/")) && (best < 0 || len(p) > len(normalURL(o.Scoped[best].Prefix))) {
			best = i
		}
	}
	out := o
	out.Scoped = nil
	if best >= 0 {
		out.S3, out.Encryption = o.Scoped[best].S3, o.Scoped[best].Encryption
	}
	return out
}

// normalURL puts a URL or path in one form for prefix matching: paths as
// absolute file:// URLs, no query, no trailing slash.
func normalURL(raw string) string {
	if !strings.Contains(raw, "://") {
		if abs, err := filepath.Abs(raw); err == nil {
			raw = "file://" + filepath.ToSlash(abs)
		}
	}
	if strings.HasPrefix(raw, "file://") {
		if u, err := url.Parse(raw); err == nil {
			return "file://" + strings.TrimRight(path.Clean("/"+u.Path), "/")
		}
	}
	raw, _, _ = strings.Cut(raw, "?")
	return strings.TrimRight(raw, "/")
}

// CanonicalURL puts a table's URL or path in the one form the budget
// ledger keys a population by when no identity is declared or carried:
// file:///abs/clean/path for paths and file URLs, SCHEME://host/clean/key
// without query parameters or a trailing slash otherwise (s3://bucket/key).
func CanonicalURL(raw string) string {
	u := normalURL(raw)
	if scheme, rest, ok := strings.Cut(u, "://"); ok && scheme != "file" {
		host, p, _ := strings.Cut(rest, "/")
		if p = strings.Trim(path.Clean("/"+p), "/"); p != "" {
			return scheme + "://" + host + "/" + p
		}
		return scheme + "://" + host
	}
	return u
}

// S3Defaults are store settings a spec applies to all its s3:// URLs.
type S3Defaults struct {
	SSE         string `yaml:"sse"`            // AES256 or aws:kms
	SSEKMSKeyID string `yaml:"sse_kms_key_id"` // with aws:kms
	AllowHTTP   bool   `yaml:"allow_http"`     // plain http:// endpoints off the loopback interface
	// Encryption turns on client-side envelope encryption of everything
	// the pipeline writes (any store, not only S3): key_id names the key
	// new objects are written with; keys_dir holds the keys as ID.key files
	// (older ids stay readable). Never the key itself.
	Encryption *EncryptionSpec `yaml:"encryption"`
}

// EncryptionSpec is the spec's encryption section.
type EncryptionSpec struct {
	KeyID   string `yaml:"key_id"`
	KeysDir string `yaml:"keys_dir"`
}

// Options returns the encryption a spec asks for.
func (e *EncryptionSpec) Options() (*Encryption, error) {
	if e.KeyID == "" || e.KeysDir == "" {
		return nil, fmt.Errorf("%w: storage.encryption needs key_id and keys_dir", ErrBadURL)
	}
	enc := &Encryption{KeyID: e.KeyID, Keys: KeyDir(e.KeysDir)}
	if _, err := enc.Keys(e.KeyID); err != nil {
		return nil, err
	}
	return enc, nil
}

func (o URLOptions) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// OpenStore opens the store whose root the URL names:
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
func OpenStore(ctx context.Context, raw string, opt URLOptions) (Store, error) {
	opt = opt.forURL(raw)
	s, err := openStore(ctx, raw, opt)
	if err != nil || opt.Encryption == nil {
		return s, err
	}
	return NewEncryptedStore(s, *opt.Encryption)
}

func openStore(ctx context.Context, raw string, opt URLOptions) (Store, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if !strings.Contains(raw, "://") {
		return NewFileStore(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%w: %s: file URLs take no host (use file:///abs/path)", ErrBadURL, raw)
		}
		return NewFileStore(filepath.FromSlash(u.Path))
	case "s3":
		return openS3(ctx, u, opt)
	case "mem":
		if s, ok := opt.Mem[u.Host]; ok && strings.Trim(u.Path, "/") == "" {
			return s, nil
		}
		return nil, fmt.Errorf("%w: %s: unknown in-memory store", ErrBadURL, raw)
	}
	return nil, fmt.Errorf("%w: %s: unknown scheme %q (want file://, s3:// or a path)", ErrBadURL, raw, u.Scheme)
}

func openS3(ctx context.Context, u *url.URL, opt URLOptions) (Store, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s: no bucket", ErrBadURL, u.Redacted())
	}
	cfg := DefaultS3Config(u.Host, u.Path)
	q := u.Query()
	cfg.Endpoint = q.Get("endpoint")
	if cfg.Endpoint == "" {
		cfg.Endpoint = opt.getenv("AWS_ENDPOINT_URL_S3")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = opt.getenv("AWS_ENDPOINT_URL")
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: path_style=%q is not a boolean", ErrBadURL, u.Redacted(), v)
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
			return nil, fmt.Errorf("%w: %s: allow_http=%q is not a boolean", ErrBadURL, u.Redacted(), v)
		}
		cfg.AllowHTTP = b
	}
	for k := range q {
		if k != "endpoint" && k != "path_style" && k != "region" && k != "sse" && k != "sse_kms_key_id" && k != "allow_http" {
			return nil, fmt.Errorf("%w: %s: unknown parameter %q", ErrBadURL, u.Redacted(), k)
		}
	}
	return NewS3Store(ctx, cfg)
}

// ParseRef opens the store of the parent of the URL and returns a Ref to its
// last element, which may be an object or a prefix. A URL that names a
// bucket or a file system root has an empty key.
func ParseRef(ctx context.Context, raw string, opt URLOptions) (Ref, error) {
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return Ref{}, fmt.Errorf("%w: %w", ErrBadURL, err)
		}
		raw = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	// The settings of the URL itself, not of its parent directory.
	opt = opt.forURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return Ref{}, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	clean := path.Clean("/" + u.Path)
	dir, base := path.Split(clean)
	if base == "" || u.Scheme == "mem" {
		s, err := OpenStore(ctx, raw, opt)
		return Ref{Store: s}, err
	}
	parent := *u
	parent.Path = dir
	s, err := OpenStore(ctx, parent.String(), opt)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Store: s, Key: base}, nil
}
