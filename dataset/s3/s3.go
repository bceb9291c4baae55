package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/veil-privacy/veil/dataset"
)

// Config configures a Store. The zero value of every field but Bucket
// has a meaning; see DefaultConfig.
type Config struct {
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`     // key prefix inside the bucket, without slashes at the ends
	Region    string `yaml:"region"`     // empty: from the environment, else us-east-1
	Endpoint  string `yaml:"endpoint"`   // empty: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
	PathStyle bool   `yaml:"path_style"` // bucket in the path, as S3-compatible servers want
	// SSE is the server-side encryption every write asks for: "" (the
	// bucket's default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with
	// SSEKMSKeyID or the account's default KMS key).
	SSE         string `yaml:"sse"`
	SSEKMSKeyID string `yaml:"sse_kms_key_id"`
	// AllowHTTP lets a plain http:// endpoint that is not on the loopback
	// interface be used; without it such an endpoint is refused, since
	// data and credentials would cross the network unencrypted.
	AllowHTTP bool `yaml:"allow_http"`

	MaxAttempts int   `yaml:"max_attempts"` // per request, with exponential backoff and jitter
	PartSize    int64 `yaml:"part_size"`    // multipart part size in bytes (at least 5 MiB)
	BlockSize   int64 `yaml:"block_size"`   // ranged-read block size in bytes
	ReadAhead   int   `yaml:"read_ahead"`   // blocks fetched per ranged GET past the one asked for
	CacheBlocks int   `yaml:"cache_blocks"` // blocks kept per open object

	// Log receives the AWS SDK's log lines (as veil's, never raw on
	// stderr): its warnings at warn level, the rest at debug; nil discards.
	Log *slog.Logger `yaml:"-"`
}

// DefaultConfig returns the defaults for bucket and prefix.
func DefaultConfig(bucket, prefix string) Config {
	return Config{
		Bucket:      bucket,
		Prefix:      strings.Trim(prefix, "/"),
		MaxAttempts: 8,
		PartSize:    16 << 20,
		BlockSize:   1 << 20,
		ReadAhead:   7,
		CacheBlocks: 32,
	}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return fmt.Errorf("%w: s3 bucket is empty", dataset.ErrBadURL)
	case c.SSE != "" && c.SSE != "AES256" && c.SSE != "aws:kms":
		return fmt.Errorf("%w: s3 sse %q: want AES256 or aws:kms", dataset.ErrBadURL, c.SSE)
	case c.SSEKMSKeyID != "" && c.SSE != "aws:kms":
		return fmt.Errorf("%w: s3 sse_kms_key_id needs sse aws:kms", dataset.ErrBadURL)
	case c.Endpoint != "" && !c.AllowHTTP && insecureEndpoint(c.Endpoint):
		return fmt.Errorf("%w: s3 endpoint %s is plain HTTP off the loopback interface: use https, or allow_http=true if the network is trusted", dataset.ErrInsecure, c.Endpoint)
	case c.PartSize < 5<<20:
		return fmt.Errorf("%w: s3 part_size %d is below the S3 minimum of 5 MiB", dataset.ErrBadURL, c.PartSize)
	case c.BlockSize < 4<<10:
		return fmt.Errorf("%w: s3 block_size %d is below 4 KiB", dataset.ErrBadURL, c.BlockSize)
	case c.ReadAhead < 0 || c.CacheBlocks < c.ReadAhead+1:
		return fmt.Errorf("%w: s3 cache_blocks must exceed read_ahead", dataset.ErrBadURL)
	case c.MaxAttempts < 1:
		return fmt.Errorf("%w: s3 max_attempts must be at least 1", dataset.ErrBadURL)
	}
	return nil
}

// Store is a Store over an S3 bucket and prefix, for AWS and S3-compatible
// servers. Credentials come from the SDK's standard chain (environment,
// shared files, SSO, IMDS). Requests are retried with exponential backoff on
// throttling, 5xx responses and connection resets.
type Store struct {
	cfg    Config
	client *awss3.Client

	mu    sync.Mutex
	stats Stats
}

// Stats counts requests, for tests and benchmarks.
type Stats struct {
	RangeGets      int64 // ranged GETs issued by open objects
	BytesFetched   int64 // bytes fetched by ranged GETs
	PutObjects     int64 // single-request uploads
	MultipartParts int64 // parts uploaded in multipart uploads
}

// New connects to the bucket of cfg and checks that it exists and the
// credentials work.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = 20e9 // 20s
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	opts = append(opts, awsconfig.WithLogger(sdkLogger(cfg.Log)))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	if awsCfg.Credentials == nil {
		return nil, fmt.Errorf("s3://%s: %w: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role", cfg.Bucket, dataset.ErrCredentials)
	}
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("s3://%s: %w: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role (%v)", cfg.Bucket, dataset.ErrCredentials, err)
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Checksums only where S3 requires them: S3-compatible servers
		// differ in their support of the newer default ones.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &Store{cfg: cfg, client: client}
	if _, err := client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		var re interface{ HTTPStatusCode() int }
		switch {
		case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden:
			return nil, fmt.Errorf("s3://%s: %w (HTTP 403): check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role) and that they may list the bucket", cfg.Bucket, dataset.ErrAccessDenied)
		case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
			return nil, fmt.Errorf("s3://%s: %w (HTTP 404)", cfg.Bucket, dataset.ErrNoBucket)
		}
		return nil, fmt.Errorf("checking bucket s3://%s: %w", cfg.Bucket, err)
	}
	return s, nil
}

// Client returns the underlying S3 client.
func (s *Store) Client() *awss3.Client { return s.client }

// Stats returns request counters since the store was made.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Store) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Location implements Store.
func (s *Store) Location() string {
	if s.cfg.Prefix == "" {
		return "s3://" + s.cfg.Bucket
	}
	return "s3://" + s.cfg.Bucket + "/" + s.cfg.Prefix
}

func (s *Store) objectKey(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return s.cfg.Prefix + "/" + key
}

// mapErr turns S3 errors into the package's sentinels.
func (s *Store) mapErr(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	var ae smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%s/%s: %w", s.Location(), key, dataset.ErrNotExist)
	case errors.As(err, &nsb):
		return fmt.Errorf("%s: %w", s.Location(), dataset.ErrNoBucket)
	case errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict"):
		return fmt.Errorf("%s/%s: %w", s.Location(), key, dataset.ErrExist)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%s/%s: %w", s.Location(), key, dataset.ErrNotExist)
		case http.StatusPreconditionFailed, http.StatusConflict:
			return fmt.Errorf("%s/%s: %w", s.Location(), key, dataset.ErrExist)
		}
	}
	return fmt.Errorf("%s %s/%s: %w", op, s.Location(), key, err)
}

// List implements Store.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[dataset.ObjectInfo, error] {
	return func(yield func(dataset.ObjectInfo, error) bool) {
		full := s.objectKey(prefix)
		if prefix == "" && s.cfg.Prefix != "" {
			full = s.cfg.Prefix + "/"
		}
		p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
			Bucket: aws.String(s.cfg.Bucket),
			Prefix: aws.String(full),
		})
		strip := 0
		if s.cfg.Prefix != "" {
			strip = len(s.cfg.Prefix) + 1
		}
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(dataset.ObjectInfo{}, s.mapErr("listing", prefix, err))
				return
			}
			for _, o := range page.Contents {
				k := aws.ToString(o.Key)
				if len(k) < strip || strings.HasSuffix(k, "/") {
					continue
				}
				info := dataset.ObjectInfo{Key: k[strip:], Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag)}
				if o.LastModified != nil {
					info.ModTime = o.LastModified.UTC()
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// Stat implements Store.
func (s *Store) Stat(ctx context.Context, key string) (dataset.ObjectInfo, error) {
	if err := dataset.CheckKey(key); err != nil {
		return dataset.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.objectKey(key))})
	if err != nil {
		return dataset.ObjectInfo{}, s.mapErr("stat", key, err)
	}
	info := dataset.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag)}
	if out.LastModified != nil {
		info.ModTime = out.LastModified.UTC()
	}
	return info, nil
}

// Open implements Store. The object reads with ranged GETs pinned to the
// ETag seen at open, through a small block cache: a miss fetches the missing
// blocks and ReadAhead more in one request, so neighbouring column chunks
// are coalesced. A replaced object makes later reads fail rather than mix
// two versions.
func (s *Store) Open(ctx context.Context, key string) (dataset.Object, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return &s3Object{ctx: ctx, s: s, key: key, info: info, blocks: make(map[int64][]byte)}, nil
}

type s3Object struct {
	ctx  context.Context
	s    *Store
	key  string
	info dataset.ObjectInfo

	mu      sync.Mutex
	blocks  map[int64][]byte
	order   []int64 // blocks in least recently fetched order
	lastEnd int64   // end of the previous read, to detect sequential reads
}

func (o *s3Object) Size() int64  { return o.info.Size }
func (o *s3Object) Close() error { o.blocks = nil; return nil }

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading %s/%s: negative offset", o.s.Location(), o.key)
	}
	if off >= o.info.Size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), o.info.Size)
	bs := o.s.cfg.BlockSize
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	sequential := off == o.lastEnd
	o.lastEnd = end
	for b := off / bs; b*bs < end; b++ {
		data, ok := o.blocks[b]
		if !ok {
			if err := o.fetch(b, (end-1)/bs, sequential); err != nil {
				return n, err
			}
			data = o.blocks[b]
		}
		lo := max(off, b*bs) - b*bs
		hi := min(end, (b+1)*bs) - b*bs
		n += copy(p[n:], data[lo:hi])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fetch loads blocks first to last (the end of the current read) in one
// ranged GET; when reads are sequential, up to ReadAhead blocks more. The
// caller holds o.mu.
func (o *s3Object) fetch(first, last int64, sequential bool) error {
	bs := o.s.cfg.BlockSize
	lastBlock := (o.info.Size - 1) / bs
	if sequential {
		last = max(last, first+int64(o.s.cfg.ReadAhead))
	}
	last = min(last, lastBlock)
	for last > first {
		if _, ok := o.blocks[last]; !ok {
			break
		}
		last-- // do not refetch cached blocks at the end of the span
	}
	lo, hi := first*bs, min((last+1)*bs, o.info.Size)
	buf := make([]byte, hi-lo)
	// The SDK retries failed requests, not bodies cut off half way (a
	// reset or truncated response): those are fetched again here, with
	// the same backoff budget.
	for attempt := 1; ; attempt++ {
		err := o.getRange(lo, hi, buf)
		if err == nil {
			break
		}
		var se *bodyError
		if !errors.As(err, &se) || attempt >= o.s.cfg.MaxAttempts || o.ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
		case <-o.ctx.Done():
			return fmt.Errorf("reading %s/%s: %w", o.s.Location(), o.key, o.ctx.Err())
		}
	}
	o.s.count(func(st *Stats) { st.RangeGets++; st.BytesFetched += hi - lo })
	for b := first; b <= last; b++ {
		s := (b - first) * bs
		o.blocks[b] = buf[s:min(s+bs, int64(len(buf)))]
		o.order = append(o.order, b)
	}
	for len(o.order) > o.s.cfg.CacheBlocks {
		delete(o.blocks, o.order[0])
		o.order = o.order[1:]
	}
	return nil
}

// bodyError is a response body that ended early or broke off.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// getRange fetches bytes [lo, hi) of the object into buf.
func (o *s3Object) getRange(lo, hi int64, buf []byte) error {
	out, err := o.s.client.GetObject(o.ctx, &awss3.GetObjectInput{
		Bucket:  aws.String(o.s.cfg.Bucket),
		Key:     aws.String(o.s.objectKey(o.key)),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", lo, hi-1)),
		IfMatch: aws.String(o.info.ETag),
	})
	if err != nil {
		return o.s.mapErr("reading", o.key, err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return &bodyError{fmt.Errorf("reading %s/%s bytes %d-%d: %w", o.s.Location(), o.key, lo, hi-1, err)}
	}
	return nil
}

// Put implements Store. Objects smaller than PartSize take one PutObject;
// larger ones a multipart upload that is aborted on any failure, so no
// partial object becomes visible.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, key, r, false)
}

// PutIfAbsent implements Store with a conditional write (If-None-Match: *).
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, key, r, true)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, ifAbsent bool) error {
	if err := dataset.CheckKey(key); err != nil {
		return err
	}
	var ifNoneMatch *string
	if ifAbsent {
		ifNoneMatch = aws.String("*")
	}
	bucket, okey := aws.String(s.cfg.Bucket), aws.String(s.objectKey(key))
	buf := make([]byte, s.cfg.PartSize)
	n, err := io.ReadFull(dataset.ContextReader(ctx, r), buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return fmt.Errorf("writing %s/%s: %w", s.Location(), key, err)
	}
	if n < len(buf) {
		in := &awss3.PutObjectInput{
			Bucket: bucket, Key: okey, Body: bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)), IfNoneMatch: ifNoneMatch,
		}
		if s.cfg.SSE != "" {
			in.ServerSideEncryption = types.ServerSideEncryption(s.cfg.SSE)
			if s.cfg.SSEKMSKeyID != "" {
				in.SSEKMSKeyId = aws.String(s.cfg.SSEKMSKeyID)
			}
		}
		_, err := s.client.PutObject(ctx, in)
		if err != nil {
			return s.mapErr("writing", key, err)
		}
		s.count(func(st *Stats) { st.PutObjects++ })
		return nil
	}

	cin := &awss3.CreateMultipartUploadInput{Bucket: bucket, Key: okey}
	if s.cfg.SSE != "" {
		cin.ServerSideEncryption = types.ServerSideEncryption(s.cfg.SSE)
		if s.cfg.SSEKMSKeyID != "" {
			cin.SSEKMSKeyId = aws.String(s.cfg.SSEKMSKeyID)
		}
	}
	mp, err := s.client.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return s.mapErr("writing", key, err)
	}
	abort := func(cause error) error {
		actx := context.WithoutCancel(ctx)
		s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: bucket, Key: okey, UploadId: mp.UploadId})
		return cause
	}
	var parts []types.CompletedPart
	for part := int32(1); n > 0; part++ {
		up, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: bucket, Key: okey, UploadId: mp.UploadId, PartNumber: aws.Int32(part),
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return abort(s.mapErr("writing", key, err))
		}
		s.count(func(st *Stats) { st.MultipartParts++ })
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(part)})
		n, err = io.ReadFull(dataset.ContextReader(ctx, r), buf)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return abort(fmt.Errorf("writing %s/%s: %w", s.Location(), key, err))
		}
	}
	if err := ctx.Err(); err != nil {
		return abort(fmt.Errorf("writing %s/%s: %w", s.Location(), key, err))
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: bucket, Key: okey, UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     ifNoneMatch,
	})
	if err != nil {
		return abort(s.mapErr("writing", key, err))
	}
	return nil
}

// Delete implements Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := dataset.CheckKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.objectKey(key))})
	if err != nil {
		if err := s.mapErr("deleting", key, err); errors.Is(err, dataset.ErrNotExist) {
			return nil
		}
		return s.mapErr("deleting", key, err)
	}
	return nil
}

// insecureEndpoint reports whether an endpoint is plain HTTP to a host off
// the loopback interface.
func insecureEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// sdkLogger routes the AWS SDK's log lines through log (nil: discard), so
// that they are veil's lines (JSON for schedulers) and not raw text ahead
// of veil's own error.
func sdkLogger(log *slog.Logger) logging.Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		if c == logging.Warn {
			log.Warn("AWS SDK: " + msg)
			return
		}
		log.Debug("AWS SDK: " + msg)
	})
}
