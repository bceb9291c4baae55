package privacy

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// IAMOptions shape the AWS IAM policy of a role.
type IAMOptions struct {
	Bucket string // the bucket the store lives in
	Prefix string // the store's root inside the bucket ("" for the bucket root)
	// SSE is the server-side encryption every put must ask for (aws:kms
	// or AES256; "" leaves puts unchecked).
	SSE string
	// KMSKeyARN, with aws:kms, is granted for encrypting and decrypting.
	KMSKeyARN string
}

// IAMPolicy is an AWS IAM policy document.
type IAMPolicy struct {
	Version   string         `json:"Version"`
	Statement []IAMStatement `json:"Statement"`
}

// IAMStatement is one statement.
type IAMStatement struct {
	Sid    string `json:"Sid"`
	Effect string `json:"Effect"`
	// Principal names who a bucket policy's statement is about: "*" or
	// {"AWS": [accounts]}; an identity policy (IAM) has none.
	Principal any            `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// IAM returns the least-privilege policy of a role: list only under its
// prefixes, read and write only its keys, every put encrypted as asked,
// nothing over plain HTTP.
func (p *Policy) IAM(role string, o IAMOptions) (*IAMPolicy, error) {
	r, ok := p.Roles[role]
	if !ok {
		names := make([]string, 0, len(p.Roles))
		for n := range p.Roles {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: unknown role %q (the policy defines %s)", ErrPolicy, role, strings.Join(names, ", "))
	}
	if o.Bucket == "" {
		return nil, fmt.Errorf("%w: a bucket is required", ErrPolicy)
	}
	if o.SSE != "" && o.SSE != "aws:kms" && o.SSE != "AES256" {
		return nil, fmt.Errorf("%w: sse %q: want aws:kms or AES256", ErrPolicy, o.SSE)
	}
	bucketARN := "arn:aws:s3:::" + o.Bucket
	key := func(prefix string) string {
		k := path.Join(strings.Trim(o.Prefix, "/"), prefix)
		if strings.HasSuffix(prefix, "/") {
			k += "/"
		}
		return strings.TrimPrefix(k, "/")
	}
	objects := func(prefixes []string) []string {
		var out []string
		for _, pre := range prefixes {
			k := key(pre)
			if strings.HasSuffix(k, "/") || !strings.Contains(path.Base(k), "*") && !strings.Contains(path.Base(k), ".") {
				k += "*"
			}
			out = append(out, bucketARN+"/"+k)
		}
		return out
	}
	// Listing: the directories the role's keys are in (S3 list conditions
	// match the prefix a client asks for).
	var list []string
	for _, pre := range append(slices.Clone(r.Read), r.Write...) {
		k := key(pre)
		if i := strings.Index(k, "*"); i >= 0 {
			k = k[:i]
		}
		if !strings.HasSuffix(k, "/") {
			if path.Dir(k) == "." {
				continue // a key at the bucket's root (policy.yaml): read, not listed
			}
			k = path.Dir(k) + "/"
		}
		if !slices.Contains(list, k+"*") {
			list = append(list, k+"*")
		}
	}
	pol := &IAMPolicy{Version: "2012-10-17"}
	if len(r.Write) > 0 {
		// A role that runs veil opens the store with HeadBucket, which S3
		// authorizes as s3:ListBucket without a prefix (and cannot tell
		// from listing the whole bucket): only the roles that write get it.
		pol.Statement = append(pol.Statement, IAMStatement{Sid: "OpenTheBucket", Effect: "Allow", Action: []string{"s3:ListBucket"},
			Resource: []string{bucketARN}, Condition: map[string]any{"Null": map[string]any{"s3:prefix": "true"}}})
	}
	pol.Statement = append(pol.Statement, IAMStatement{Sid: "ListOwnPrefixes", Effect: "Allow", Action: []string{"s3:ListBucket"},
		Resource: []string{bucketARN}, Condition: map[string]any{"StringLike": map[string]any{"s3:prefix": list}}})
	if len(r.Read) > 0 {
		pol.Statement = append(pol.Statement, IAMStatement{Sid: "Read", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: objects(r.Read)})
	}
	if len(r.Write) > 0 {
		pol.Statement = append(pol.Statement, IAMStatement{Sid: "Write", Effect: "Allow",
			Action:   []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
			Resource: objects(r.Write)})
		if o.SSE != "" {
			// The pattern AWS documents for refusing unencrypted uploads:
			// a wrong header, or none, denies the put.
			pol.Statement = append(pol.Statement,
				IAMStatement{Sid: "DenyWrongEncryption", Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: []string{bucketARN + "/*"},
					Condition: map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption": o.SSE}}},
				IAMStatement{Sid: "DenyUnencryptedPuts", Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: []string{bucketARN + "/*"},
					Condition: map[string]any{"Null": map[string]any{"s3:x-amz-server-side-encryption": "true"}}})
		}
	}
	if o.SSE == "aws:kms" && o.KMSKeyARN != "" {
		actions := []string{"kms:Decrypt"}
		if len(r.Write) > 0 {
			actions = append(actions, "kms:GenerateDataKey", "kms:Encrypt")
		}
		pol.Statement = append(pol.Statement, IAMStatement{Sid: "UseTheKMSKey", Effect: "Allow", Action: actions, Resource: []string{o.KMSKeyARN}})
	}
	pol.Statement = append(pol.Statement, IAMStatement{Sid: "DenyInsecureTransport", Effect: "Deny", Action: []string{"s3:*"},
		Resource: []string{bucketARN, bucketARN + "/*"}, Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}})
	return pol, nil
}

// JSON returns the policy indented.
func (p *IAMPolicy) JSON() []byte {
	b, _ := json.MarshalIndent(p, "", "  ")
	return append(b, '\n')
}

// Allows reports whether a role may read (or write) a key, by the same
// prefixes and * patterns the IAM policy grants.
func (r Role) Allows(key string, write bool) bool {
	list := r.Read
	if write {
		list = r.Write
	}
	for _, pre := range list {
		if matchKey(pre, key) {
			return true
		}
	}
	return false
}

// matchKey matches a key against a prefix pattern: a prefix ending in /
// (or without a *) matches everything below it; * matches any run of
// characters, as in IAM resource ARNs.
func matchKey(pattern, key string) bool {
	if !strings.Contains(pattern, "*") {
		return strings.HasPrefix(key, pattern)
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(key, parts[0]) {
		return false
	}
	rest := key[len(parts[0]):]
	for i, part := range parts[1:] {
		j := strings.Index(rest, part)
		if j < 0 {
			return false
		}
		if i == len(parts)-2 && part == "" {
			return true
		}
		rest = rest[j+len(part):]
	}
	return rest == "" || strings.HasSuffix(pattern, "*")
}
