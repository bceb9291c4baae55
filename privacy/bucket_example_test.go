package privacy_test

import (
	"fmt"

	"github.com/veil-privacy/veil/privacy"
)

// The marketing role's statements in a bucket policy: its account as the
// principal, the Deny of deletes from the ledger and the audit log for
// everyone.
func ExamplePolicy_BucketPolicy() {
	doc, err := privacy.DefaultPolicy().BucketPolicy([]string{"marketing"}, privacy.BucketOptions{
		IAMOptions: privacy.IAMOptions{Bucket: "shop-data"},
		Accounts:   map[string]string{"marketing": "mkt"},
		AppendOnly: privacy.DefaultAppendOnly(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range doc.Statement {
		fmt.Println(s.Sid, s.Effect, s.Principal, s.Action)
	}
	// Output:
	// MarketingListOwnPrefixes Allow map[AWS:[mkt]] [s3:ListBucket]
	// MarketingRead Allow map[AWS:[mkt]] [s3:GetObject]
	// DenyInsecureTransport Deny * [s3:*]
	// DenyDeleteAppendOnly Deny * [s3:DeleteObject s3:DeleteObjectVersion]
}
