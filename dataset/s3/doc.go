// Package s3 is the S3 backend of dataset.Store, for AWS and S3-compatible
// servers (ranged reads, multipart writes, conditional puts, server-side
// encryption), and asks AWS STS whose credentials a run uses. Apart from
// dataset/storetest, which makes buckets for tests, it is the only package
// of veil that imports the AWS SDK: package dataset stays free of it, and
// dataset/open opens s3:// URLs with it.
package s3
