package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
)

// Every write asks for the configured server-side encryption: single PUTs
// and multipart uploads, checked on the wire by a proxy.
func TestS3ServerSideEncryptionHeaders(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ sse, key string }{{"aws:kms", "alias/veil-outputs"}, {"AES256", ""}} {
		cfg := storetest.S3Bucket(t, "enc")
		proxy := storetest.NewProxy(t, cfg.Endpoint, storetest.Faults{})
		cfg.Endpoint, cfg.SSE, cfg.SSEKMSKeyID = proxy.URL, c.sse, c.key
		s, err := s3.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := dataset.PutBytes(ctx, s, "small", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutIfAbsent(ctx, "once", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16)
		if err := dataset.PutBytes(ctx, s, "big", big); err != nil {
			t.Fatal(err)
		}
		if got, err := dataset.ReadAll(ctx, s, "big"); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("big object: %d bytes, %v", len(got), err)
		}
		writes := 0
		for _, r := range proxy.Requests() {
			q, _ := url.ParseQuery(r.Query)
			object := r.Method == http.MethodPut && !q.Has("partNumber")
			create := r.Method == http.MethodPost && q.Has("uploads")
			sse := r.Header.Get("X-Amz-Server-Side-Encryption")
			if !object && !create {
				continue
			}
			writes++
			if sse != c.sse || r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != c.key {
				t.Errorf("%s %s?%s: SSE %q key %q, want %q %q", r.Method, r.Path, r.Query, sse, r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"), c.sse, c.key)
			}
		}
		// Two single PUTs and one CreateMultipartUpload.
		if writes != 3 {
			t.Errorf("%s: %d object writes, want 3", c.sse, writes)
		}
	}
}

func TestS3RefusesPlainHTTPOffLoopback(t *testing.T) {
	ctx := context.Background()
	cfg := s3.DefaultConfig("b", "")
	cfg.Endpoint = "http://10.20.30.40:9000"
	if _, err := s3.New(ctx, cfg); !errors.Is(err, dataset.ErrInsecure) {
		t.Errorf("plain http off loopback: %v", err)
	}
	if _, err := open.Store(ctx, "s3://b/p?endpoint=http://s3.internal:9000", dataset.URLOptions{}); !errors.Is(err, dataset.ErrInsecure) {
		t.Errorf("URL with plain http: %v", err)
	}
	cfg.AllowHTTP = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("allowed: %v", err)
	}
	for _, ep := range []string{"http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000", "https://s3.internal"} {
		c := s3.DefaultConfig("b", "")
		c.Endpoint = ep
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	c := s3.DefaultConfig("b", "")
	c.SSE = "rot13"
	if err := c.Validate(); !errors.Is(err, dataset.ErrBadURL) {
		t.Errorf("unknown SSE: %v", err)
	}
}

// Through a proxy that fails a quarter of the requests (500s, 503
// SlowDown, connection resets, truncated and slow responses), every store
// operation still succeeds with the right bytes: retries with backoff, and
// truncated bodies are read again.
func TestS3SurvivesFaults(t *testing.T) {
	ctx := context.Background()
	cfg := storetest.S3Bucket(t, "faults")
	proxy := storetest.NewProxy(t, cfg.Endpoint, storetest.Faults{ServerError: 0.06, Throttle: 0.06, Reset: 0.05, Truncate: 0.1, Slow: 0.02, SlowFor: 50 * time.Millisecond, Seed: 3})
	cfg.Endpoint = proxy.URL
	s, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i := range 20 {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i*997)
		key := fmt.Sprintf("obj/%02d", i)
		if err := dataset.PutBytes(ctx, s, key, data); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		want[key] = data
	}
	big := bytes.Repeat([]byte("fault-tolerant "), (6<<20)/15)
	if err := dataset.PutBytes(ctx, s, "obj/big", big); err != nil {
		t.Fatal(err)
	}
	want["obj/big"] = big
	for k, data := range want {
		got, err := dataset.ReadAll(ctx, s, k)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %s: %d bytes (want %d), %v", k, len(got), len(data), err)
		}
	}
	obj, err := s.Open(ctx, "obj/big")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4096)
	for off := int64(0); off < int64(len(big)); off += 1 << 20 {
		if _, err := obj.ReadAt(part, off); err != nil || !bytes.Equal(part, big[off:off+4096]) {
			t.Fatalf("ranged read at %d: %v", off, err)
		}
	}
	obj.Close()
	n := 0
	for _, err := range s.List(ctx, "obj/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(want) {
		t.Errorf("listed %d objects, want %d", n, len(want))
	}
	faults := map[string]int{}
	for _, r := range proxy.Requests() {
		faults[r.Fault]++
	}
	t.Logf("requests by injected fault: %v", faults)
	if faults["server-error"] == 0 || faults["throttle"] == 0 || faults["reset"] == 0 || faults["truncate"] == 0 {
		t.Errorf("not every kind of fault was injected: %v", faults)
	}
}
