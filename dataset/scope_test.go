package dataset

import "testing"

// Scoped options apply to the URLs under their prefix, the longest prefix
// winning, whether the URL is a path, a file:// URL (escaped or not) or an
// s3:// URL with parameters; a sibling that only shares the prefix's
// spelling is not under it.
func TestScopedURLOptions(t *testing.T) {
	eu, us := &Encryption{KeyID: "eu"}, &Encryption{KeyID: "us"}
	o := URLOptions{Encryption: &Encryption{KeyID: "spec"}, Scoped: []ScopedOptions{
		{Prefix: "/data/out/eu", Encryption: eu},
		{Prefix: "/data/out/eu/cohorts/special", Encryption: us},
		{Prefix: "file:///data/my out/us", Encryption: us},
		{Prefix: "s3://bucket-eu/exports?sse=aws:kms", S3: S3Defaults{SSE: "aws:kms", SSEKMSKeyID: "eu-key"}},
	}}
	for _, tc := range []struct{ url, want, sseKey string }{
		{"/data/out/eu", "eu", ""},
		{"/data/out/eu/cohorts/dt=2026-11-27", "eu", ""},
		{"file:///data/out/eu/cohorts", "eu", ""},
		{"/data/out/eu/cohorts/special/x", "us", ""},
		{"/data/out/europe", "spec", ""},
		{"/data/ledger", "spec", ""},
		{"file:///data/my%20out/us/models", "us", ""},
		{"s3://bucket-eu/exports/run=1?region=eu-west-1", "", "eu-key"},
		{"s3://bucket-eu/exports2", "spec", ""},
	} {
		got := o.For(tc.url)
		id := ""
		if got.Encryption != nil {
			id = got.Encryption.KeyID
		}
		if id != tc.want || got.S3.SSEKMSKeyID != tc.sseKey || got.Scoped != nil {
			t.Errorf("%s: key %q, kms %q, want %q, %q", tc.url, id, got.S3.SSEKMSKeyID, tc.want, tc.sseKey)
		}
	}
}
