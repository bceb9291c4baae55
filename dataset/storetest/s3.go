package storetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/veil-privacy/veil/dataset/s3"
)

// The S3 test server is named by VEIL_TEST_S3_ENDPOINT (for example
// http://127.0.0.1:7070, as scripts/test.sh starts versitygw), with
// credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Without it S3
// tests skip, except under CI (CI=true), where they fail.

var bucketSeq atomic.Int64

// S3Bucket creates a fresh bucket on the test server and returns a store
// configuration for it with the given prefix. The bucket is emptied and
// removed when the test ends.
func S3Bucket(t testing.TB, prefix string) s3.Config {
	t.Helper()
	endpoint := os.Getenv("VEIL_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("VEIL_TEST_S3_ENDPOINT is not set: under CI the S3 tests must run (use scripts/test.sh)")
		}
		t.Skip("VEIL_TEST_S3_ENDPOINT is not set; run scripts/test.sh to test against a real S3 server")
	}
	ctx := context.Background()
	client := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	name := strings.ToLower(fmt.Sprintf("veil-test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, bucketSeq.Add(1)))
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating test bucket %s at %s: %v", name, endpoint, err)
	}
	t.Cleanup(func() {
		p := awss3.NewListObjectsV2Paginator(client, &awss3.ListObjectsV2Input{Bucket: aws.String(name)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		client.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	cfg := s3.DefaultConfig(name, prefix)
	cfg.Endpoint = endpoint
	cfg.PathStyle = true
	cfg.Region = "us-east-1"
	cfg.PartSize = 5 << 20
	return cfg
}

// S3URL returns the s3:// URL of cfg with its endpoint in the query.
func S3URL(cfg s3.Config) string {
	u := "s3://" + cfg.Bucket
	if cfg.Prefix != "" {
		u += "/" + cfg.Prefix
	}
	return u + "?endpoint=" + cfg.Endpoint
}
