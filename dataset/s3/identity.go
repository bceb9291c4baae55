package s3

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/veil-privacy/veil/dataset"
)

// CallerIdentity asks AWS STS who the credentials of the environment
// belong to (GetCallerIdentity, which needs no permission) and returns the
// caller's ARN, for the audit log. The endpoint is AWS_ENDPOINT_URL_STS or
// AWS_ENDPOINT_URL, read through opt, else AWS's own. It gives up after
// timeout: S3-compatible servers have no STS.
func CallerIdentity(ctx context.Context, opt dataset.URLOptions, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryMaxAttempts(1))
	if err != nil {
		return "", fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := opt.Env("AWS_ENDPOINT_URL_STS")
	if endpoint == "" {
		endpoint = opt.Env("AWS_ENDPOINT_URL")
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	if out.Arn == nil || *out.Arn == "" {
		return "", fmt.Errorf("sts GetCallerIdentity: no ARN in the answer")
	}
	return *out.Arn, nil
}
