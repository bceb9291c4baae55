package privacy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"
)

// BucketOptions shape the S3 bucket policy of a set of roles.
type BucketOptions struct {
	IAMOptions
	// Accounts maps a role to the account (the principal: an access key
	// id on versitygw and MinIO, a user on Ceph, an ARN on AWS) that acts
	// in it; a role not in the map is its own account name.
	Accounts map[string]string
	// AppendOnly are the key prefixes (from the store's root) nobody may
	// delete from: the budget ledger and the audit log by default
	// (DefaultAppendOnly). Only roles that write there may add to them.
	AppendOnly []string
}

// DefaultAppendOnly are the prefixes of the built-in layout that only grow:
// the budget ledger and the audit log.
func DefaultAppendOnly() []string { return []string{"ledger/", "state/audit/"} }

// BucketPolicy returns one S3 bucket policy for the given roles, for
// stores whose users are accounts rather than IAM roles (versitygw, MinIO,
// Ceph): each role's statements of IAM, scoped to its account by a
// Principal and named ROLE + Sid (SchedulerRead); the Deny statements
// (encryption, TLS) once for every principal; and DenyDeleteAppendOnly, a
// Deny of deletes under AppendOnly for every principal. The KMS grant of
// IAM has no place in a bucket policy and is left out.
func (p *Policy) BucketPolicy(roles []string, o BucketOptions) (*IAMPolicy, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: no role", ErrPolicy)
	}
	pol := &IAMPolicy{Version: "2012-10-17"}
	var denies []IAMStatement
	seen := map[string]bool{}
	for _, role := range roles {
		if seen[role] {
			return nil, fmt.Errorf("%w: role %q given twice", ErrPolicy, role)
		}
		seen[role] = true
		doc, err := p.IAM(role, o.IAMOptions)
		if err != nil {
			return nil, err
		}
		account := o.Accounts[role]
		if account == "" {
			account = role
		}
		for _, st := range doc.Statement {
			switch {
			case st.Sid == "UseTheKMSKey":
				continue
			case st.Effect == "Deny":
				if !slices.ContainsFunc(denies, func(d IAMStatement) bool { return d.Sid == st.Sid }) {
					st.Principal = "*"
					denies = append(denies, st)
				}
				continue
			}
			st.Sid = title(role) + st.Sid
			st.Principal = map[string]any{"AWS": []string{account}}
			pol.Statement = append(pol.Statement, st)
		}
	}
	if len(o.AppendOnly) > 0 {
		bucketARN := "arn:aws:s3:::" + o.Bucket
		var res []string
		for _, pre := range o.AppendOnly {
			k := strings.TrimPrefix(path.Join(strings.Trim(o.Prefix, "/"), pre), "/")
			if strings.HasSuffix(pre, "/") {
				k += "/"
			}
			res = append(res, bucketARN+"/"+k+"*")
		}
		denies = append(denies, IAMStatement{Sid: "DenyDeleteAppendOnly", Effect: "Deny", Principal: "*",
			Action: []string{"s3:DeleteObject", "s3:DeleteObjectVersion"}, Resource: res})
	}
	pol.Statement = append(pol.Statement, denies...)
	return pol, nil
}

// title upper-cases the first letter of a role's name for a Sid.
func title(s string) string {
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}
