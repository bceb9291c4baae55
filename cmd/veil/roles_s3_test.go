package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
)

// vgwServer is a versitygw of a test's own, with its internal IAM backend
// (--iam-dir) and its admin API, so that the test can create accounts.
type vgwServer struct {
	bin, endpoint, admin string
	rootKey, rootSecret  string
}

// startVersitygw starts versitygw (the binary scripts/test.sh installs:
// $PATH or GOPATH/bin) on two free loopback ports, stopped when the test
// ends. Without the binary the test skips, except under CI=true.
func startVersitygw(t *testing.T) *vgwServer {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		// Where go install put it (scripts/lib/versitygw.sh): GOBIN, else
		// GOPATH/bin.
		gobin, _ := exec.Command("go", "env", "GOBIN").Output()
		dir := strings.TrimSpace(string(gobin))
		if dir == "" {
			gopath, _ := exec.Command("go", "env", "GOPATH").Output()
			dir = filepath.Join(strings.TrimSpace(string(gopath)), "bin")
		}
		bin = filepath.Join(dir, "versitygw")
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("versitygw is not installed: under CI the S3 tests must run (scripts/test.sh installs it)")
			}
			t.Skip("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0, or run scripts/test.sh)")
		}
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.MkdirAll(filepath.Join(dir, "iam"), 0o755)
	v := &vgwServer{bin: bin, rootKey: "veil-root", rootSecret: "veil-root-secret-0123456789"}
	for attempt := 0; attempt < 5; attempt++ {
		port, admin := freePort(t), freePort(t)
		cmd := exec.Command(bin, "--port", port, "--admin-port", admin, "--iam-dir", filepath.Join(dir, "iam"), "posix", filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+v.rootKey, "ROOT_SECRET_KEY="+v.rootSecret)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		up := false
		for i := 0; i < 100 && !up; i++ {
			time.Sleep(50 * time.Millisecond)
			c1, e1 := net.Dial("tcp", port)
			c2, e2 := net.Dial("tcp", admin)
			if e1 == nil && e2 == nil {
				up = true
			}
			for _, c := range []net.Conn{c1, c2} {
				if c != nil {
					c.Close()
				}
			}
		}
		if up {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			v.endpoint, v.admin = "http://"+port, "http://"+admin
			return v
		}
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("versitygw did not start on %s: %s", port, log.String())
	}
	t.Fatal("versitygw did not start")
	return nil
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// createUser creates an account of role user with versitygw's admin CLI.
func (v *vgwServer) createUser(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command(v.bin, "admin", "-a", v.rootKey, "-s", v.rootSecret, "--er", v.admin,
		"create-user", "-a", name, "-s", secretOf(name), "-r", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("creating the account %s: %v: %s", name, err, out)
	}
}

func secretOf(account string) string { return account + "-secret-0123456789" }

func (v *vgwServer) client(access, secret string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(v.endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired, ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts: 1})
}

// status is the HTTP status of an S3 call: 200 when it succeeded.
func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 200
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	t.Fatalf("no HTTP status: %v", err)
	return 0
}

// The object classes of a store the demo pipeline wrote, by key.
func objectClass(key string) string {
	base := path.Base(key)
	switch {
	case key == "policy.yaml":
		return "policy.yaml"
	case strings.HasPrefix(key, "shop/"):
		return "shop inputs"
	case strings.HasPrefix(key, "ledger/"):
		return "budget ledger"
	case strings.HasPrefix(key, "state/audit/"):
		return "audit log"
	case strings.HasPrefix(key, "state/lineage/"):
		return "lineage"
	case strings.HasPrefix(key, "state/steward/"):
		return "steward reports"
	case strings.Contains(key, "/lock/"):
		return "locks"
	case strings.HasPrefix(key, "state/"):
		return "run records"
	case strings.HasPrefix(key, "out/models/"):
		for _, c := range []string{"item_factors", "recommendations", "model_card"} {
			if strings.HasPrefix(base, c+"-") {
				return "model " + c
			}
		}
		if base == dataset.ManifestName {
			return "model manifest"
		}
		return "model other"
	case strings.HasPrefix(key, "out/cohorts"):
		for _, c := range []string{"assignments", "profiles", "datasheet", "cohort_sizes", "cohort_map", "monitoring"} {
			if strings.HasPrefix(base, c+"-") {
				return "cohort exports"
			}
		}
		if base == dataset.ManifestName {
			return "cohort manifest"
		}
		return "cohort diagnostics" // composition, drift, feature stats
	}
	return "other"
}

// TestRolesOnVersitygw proves the roles on a server that enforces them:
// versitygw with one account per role and the bucket policy of veil policy
// bucket. The demo pipeline runs as the scheduler's account into the
// bucket; then each role's account tries GET, PUT, DELETE and LIST on
// every object the pipeline wrote, and each must succeed exactly where the
// role (and the append-only ledger and audit log) allows and fail with 403
// elsewhere; the steward reports stay out of reach of marketing and the
// engineer (the release census).
func TestRolesOnVersitygw(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: the roles on versitygw run the demo pipeline on S3 (about a minute)")
	}
	v := startVersitygw(t)
	ctx := context.Background()
	roles := []string{"scheduler", "marketing", "steward", "engineer"}
	for _, r := range roles {
		v.createUser(t, r)
	}
	root := v.client(v.rootKey, v.rootSecret)
	const bucket = "veil-roles"
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}

	// The policy, with every statement veil policy bucket prints.
	code, doc, msg := run(t, append([]string{"policy", "bucket", "--bucket", bucket, "--sse", "AES256"}, roles...)...)
	if code != 0 {
		t.Fatal(msg)
	}
	var full privacy.IAMPolicy
	if err := json.Unmarshal([]byte(doc), &full); err != nil {
		t.Fatal(err)
	}
	put := func(p privacy.IAMPolicy) error {
		b, _ := json.Marshal(p)
		_, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(string(b))})
		return err
	}
	without := func(p privacy.IAMPolicy, sids ...string) privacy.IAMPolicy {
		p.Statement = slices.DeleteFunc(slices.Clone(p.Statement), func(s privacy.IAMStatement) bool { return slices.Contains(sids, s.Sid) })
		return p
	}
	// Statements versitygw does not evaluate: it refuses a policy that
	// names a condition key outside its catalogue (s3:x-amz-server-side-
	// encryption: it never reads that header). They keep their structural
	// check (TestPolicyBucket, TestPolicyIAM).
	var unenforced []string
	if err := put(full); err != nil {
		t.Logf("versitygw refuses the whole bucket policy: %v", err)
		for _, s := range full.Statement {
			one := privacy.IAMPolicy{Version: full.Version, Statement: []privacy.IAMStatement{s}}
			if err := put(one); err != nil {
				unenforced = append(unenforced, s.Sid)
				t.Logf("NOT ENFORCED by versitygw: statement %s (%v): it keeps its structural check only", s.Sid, err)
			}
		}
		if err := put(without(full, unenforced...)); err != nil {
			t.Fatalf("versitygw refuses the policy without %v: %v", unenforced, err)
		}
	}
	applied := without(full, unenforced...)
	for _, sid := range unenforced {
		if sid != "DenyWrongEncryption" && sid != "DenyUnencryptedPuts" {
			t.Errorf("versitygw refuses %s, which it enforced before", sid)
		}
	}

	// DenyInsecureTransport over plain HTTP (this server has no TLS):
	// every request of every account is refused.
	if slices.ContainsFunc(applied.Statement, func(s privacy.IAMStatement) bool { return s.Sid == "DenyInsecureTransport" }) {
		for _, r := range roles {
			_, err := v.client(r, secretOf(r)).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("policy.yaml")})
			if s := status(t, err); s != 403 {
				t.Errorf("DenyInsecureTransport: %s GET over HTTP: %d, want 403", r, s)
			}
		}
		t.Log("DenyInsecureTransport enforced: every account's request over plain HTTP is refused (403); the matrix runs without it")
		applied = without(applied, "DenyInsecureTransport")
		if err := put(applied); err != nil {
			t.Fatal(err)
		}
	}

	// The shop and the steward's policy, put by the root account (the
	// store's owner, as the shop's own export job would).
	dir := t.TempDir()
	sc := synth.DefaultConfig()
	sc.Subjects, sc.Days = 300, 10
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--days", "10", "--end", sc.End.Format(time.DateOnly)); code != 0 {
		t.Fatal(msg)
	}
	s3root := "s3://" + bucket
	demo := func(file []byte) string { return strings.ReplaceAll(string(file), " veil-demo/", " "+s3root+"/") }
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(demo(configs.Policy)), 0o644)
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(filepath.ToSlash(rel)), Body: bytes.NewReader(b)}); err != nil {
			t.Fatalf("uploading %s: %v", rel, err)
		}
		return nil
	})

	// The demo pipeline (configs/nightly.yaml) as the scheduler's account.
	text := demo(configs.Nightly)
	text = strings.Replace(text, "textfile: "+s3root+"/veil.prom", "textfile: "+filepath.Join(dir, "veil.prom"), 1)
	spec, err := jobs.ParseSpec("configs/nightly.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for i := range spec.Steps {
		if c := spec.Steps[i].Segment; c != nil {
			c.Floor.MinSize = 20
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "scheduler")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretOf("scheduler"))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	env := map[string]string{"AWS_ENDPOINT_URL_S3": v.endpoint, "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1", privacy.PolicyEnv: s3root + "/policy.yaml"}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if _, err := jobs.Run(ctx, spec, jobs.Options{LogicalDate: sc.End, URL: dataset.URLOptions{Getenv: getenv}, Getenv: getenv, Version: "test"}); err != nil {
		t.Fatalf("the demo pipeline as the scheduler: %v", err)
	}

	// Every object, its bytes (to put back what a PUT or DELETE changed).
	var keys []string
	p := s3.NewListObjectsV2Paginator(root, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	get := func(c *s3.Client, key string) ([]byte, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	pol := privacy.DefaultPolicy()
	appendOnly := privacy.DefaultAppendOnly()
	listPatterns := map[string][]string{}
	for _, s := range applied.Statement {
		if strings.HasSuffix(s.Sid, "ListOwnPrefixes") {
			c := s.Condition["StringLike"].(map[string]any)["s3:prefix"].([]any)
			for _, x := range c {
				listPatterns[strings.TrimSuffix(s.Sid, "ListOwnPrefixes")] = append(listPatterns[strings.TrimSuffix(s.Sid, "ListOwnPrefixes")], x.(string))
			}
		}
	}
	type cell struct{ role, class, op string }
	observed := map[cell]map[bool]int{}
	note := func(c cell, allowed bool) {
		if observed[c] == nil {
			observed[c] = map[bool]int{}
		}
		observed[c][allowed]++
	}
	classes := map[string]bool{}
	for _, key := range keys {
		class := objectClass(key)
		classes[class] = true
		orig, err := get(root, key)
		if err != nil {
			t.Fatal(err)
		}
		dirPrefix := path.Dir(key) + "/"
		if !strings.Contains(key, "/") {
			dirPrefix = key // a key at the bucket's root: list by its name
		}
		for _, role := range roles {
			r := pol.Roles[role]
			c := v.client(role, secretOf(role))
			steward := class == "steward reports"
			wantRead := r.Allows(key, false)
			wantWrite := r.Allows(key, true)
			wantDelete := wantWrite && !slices.ContainsFunc(appendOnly, func(pre string) bool { return strings.HasPrefix(key, pre) })
			if steward && (role == "marketing" || role == "engineer") && wantRead {
				t.Errorf("census: the %s role may read the steward report %s", role, key)
			}
			wantList := slices.ContainsFunc(listPatterns[strings.ToUpper(role[:1])+role[1:]], func(pat string) bool { return globMatch(pat, dirPrefix) })
			check := func(op string, want bool, err error) {
				s := status(t, err)
				got := s == 200 || s == 204
				if !got && s != 403 {
					t.Errorf("%s %s %s: HTTP %d (%v), want 200 or 403", role, op, key, s, err)
				}
				if got != want {
					t.Errorf("%s %s %s (%s): allowed %v, want %v (HTTP %d)", role, op, key, class, got, want, s)
				}
				note(cell{role, class, op}, got)
			}
			_, err := get(c, key)
			check("GET", wantRead, err)
			_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(dirPrefix)})
			check("LIST", wantList, err)
			in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(orig)}
			in.ServerSideEncryption = "AES256"
			_, err = c.PutObject(ctx, in)
			check("PUT", wantWrite, err)
			_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			check("DELETE", wantDelete, err)
			if err == nil {
				if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(orig)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, want := range []string{"steward reports", "budget ledger", "audit log", "locks", "lineage", "cohort exports", "model item_factors", "model recommendations", "model model_card"} {
		if !classes[want] {
			t.Errorf("the pipeline wrote no %s", want)
		}
	}

	// An unencrypted put where the policy demands AES256.
	_, err = v.client("scheduler", secretOf("scheduler")).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("out/cohorts/plain.txt"), Body: strings.NewReader("plain")})
	switch s := status(t, err); {
	case slices.Contains(unenforced, "DenyUnencryptedPuts") && s == 200:
		t.Log("NOT ENFORCED by versitygw: an unencrypted PUT by the scheduler into out/cohorts/ succeeds (DenyUnencryptedPuts and DenyWrongEncryption are not on the server)")
	case s != 403:
		t.Errorf("an unencrypted put: HTTP %d, want 403", s)
	}

	// What the roles promise, whatever the role definitions say: checked
	// on the observations, not on Allows.
	never := []struct{ role, class, op string }{
		{"marketing", "steward reports", "GET"}, {"marketing", "budget ledger", "GET"}, {"marketing", "audit log", "GET"},
		{"marketing", "lineage", "GET"}, {"marketing", "model recommendations", "GET"}, {"marketing", "shop inputs", "GET"},
		{"engineer", "steward reports", "GET"}, {"engineer", "model recommendations", "GET"}, {"engineer", "shop inputs", "GET"},
		{"engineer", "cohort exports", "GET"}, {"steward", "model recommendations", "GET"}, {"steward", "shop inputs", "GET"},
	}
	for _, role := range roles {
		for _, class := range []string{"budget ledger", "audit log"} {
			never = append(never, struct{ role, class, op string }{role, class, "DELETE"})
			if role != "scheduler" {
				never = append(never, struct{ role, class, op string }{role, class, "PUT"})
			}
		}
	}
	for _, n := range never {
		if got := observed[cell{n.role, n.class, n.op}][true]; got > 0 {
			t.Errorf("%s may %s %d objects of the %s", n.role, n.op, got, n.class)
		}
	}
	// DenyDeleteAppendOnly is what keeps the scheduler from deleting the
	// ledger: without it the same delete succeeds.
	var ledgerKey string
	for _, k := range keys {
		if objectClass(k) == "budget ledger" {
			ledgerKey = k
			break
		}
	}
	if err := put(without(applied, "DenyDeleteAppendOnly")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.client("scheduler", secretOf("scheduler")).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(ledgerKey)}); status(t, err) != 204 && status(t, err) != 200 {
		t.Errorf("without DenyDeleteAppendOnly the scheduler still may not delete %s: %v", ledgerKey, err)
	}

	// The matrix, as observed.
	var lines []string
	for c, n := range observed {
		verdict := "allowed"
		switch {
		case n[true] > 0 && n[false] > 0:
			verdict = fmt.Sprintf("mixed (%d allowed, %d denied)", n[true], n[false])
		case n[false] > 0:
			verdict = "denied"
		}
		lines = append(lines, fmt.Sprintf("%-10s %-22s %-6s %s (%d objects)", c.role, c.class, c.op, verdict, n[true]+n[false]))
	}
	sort.Strings(lines)
	t.Logf("access matrix observed on versitygw (%d objects):\n%s", len(keys), strings.Join(lines, "\n"))
}

// globMatch matches s against an IAM-style pattern where * matches any run
// of characters, / included.
func globMatch(pat, s string) bool {
	parts := strings.Split(pat, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, part)
		}
		j := strings.Index(s, part)
		if j < 0 {
			return false
		}
		s = s[j+len(part):]
	}
	return s == ""
}
