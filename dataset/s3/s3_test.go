package s3_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
)

func TestS3Store(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dataset.Store {
		cfg := storetest.S3Bucket(t, "some/prefix")
		s, err := s3.New(context.Background(), cfg)
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
	if _, err := s3.New(ctx, missing); !errors.Is(err, dataset.ErrNoBucket) {
		t.Errorf("missing bucket: %v, want ErrNoBucket", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	if _, err := s3.New(ctx, cfg); err == nil {
		t.Error("wrong credentials were accepted")
	}
}

// A wrong secret key is access denied (HTTP 403), pointing at the
// credentials, not a missing bucket.
func TestS3StoreWrongSecret(t *testing.T) {
	cfg := storetest.S3Bucket(t, "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-0000000000")
	_, err := s3.New(context.Background(), cfg)
	if !errors.Is(err, dataset.ErrAccessDenied) || errors.Is(err, dataset.ErrNoBucket) || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("wrong secret: %v, want access denied naming the credentials", err)
	}
}

// The AWS SDK's log lines go to the store's logger, not raw to stderr.
func TestS3SDKLogsThroughLogger(t *testing.T) {
	var buf bytes.Buffer
	cfg := s3.DefaultConfig("veil-any", "")
	cfg.Region = "us-east-1"
	cfg.Endpoint = "http://127.0.0.1:1" // nothing listens: no credentials are ever sent
	cfg.MaxAttempts = 1
	cfg.Log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// No credentials anywhere: the SDK tries instance metadata and warns
	// that it falls back to IMDSv1.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	// A stand-in for instance metadata that has no token (IMDSv2) and no
	// role, as a machine outside AWS answers.
	imds := httptest.NewServer(http.NotFoundHandler())
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	_, err := s3.New(context.Background(), cfg)
	if !errors.Is(err, dataset.ErrCredentials) {
		t.Errorf("no credentials: %v", err)
	}
	if !strings.Contains(buf.String(), `"level":"WARN","msg":"AWS SDK: falling back to IMDSv1`) {
		t.Errorf("the SDK's warning did not reach the logger: %q", buf.String())
	}
}

func TestS3MissingCredentials(t *testing.T) {
	cfg := storetest.S3Bucket(t, "")
	// No keys anywhere, and no instance metadata lookup: that would leave
	// this machine.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	_, err := s3.New(context.Background(), cfg)
	if !errors.Is(err, dataset.ErrCredentials) {
		t.Fatalf("no credentials: %v, want ErrCredentials", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}
