package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/privacy"
)

func TestPolicyIAM(t *testing.T) {
	code, out, msg := run(t, "policy", "iam", "scheduler", "--bucket", "shop-data", "--prefix", "veil", "--kms-key", "arn:aws:kms:eu-west-1:111122223333:key/abc")
	if code != 0 {
		t.Fatalf("iam: %d %s", code, msg)
	}
	var doc privacy.IAMPolicy
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Version != "2012-10-17" {
		t.Fatalf("not an IAM policy: %v\n%s", err, out)
	}
	sids := map[string]privacy.IAMStatement{}
	for _, s := range doc.Statement {
		sids[s.Sid] = s
	}
	for _, want := range []string{"ListOwnPrefixes", "Read", "Write", "DenyWrongEncryption", "DenyUnencryptedPuts", "UseTheKMSKey", "DenyInsecureTransport"} {
		if _, ok := sids[want]; !ok {
			t.Errorf("scheduler policy lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Join(sids["Write"].Resource, " "), "arn:aws:s3:::shop-data/veil/out/*") {
		t.Errorf("write resources %v", sids["Write"].Resource)
	}
	code, out, _ = run(t, "policy", "iam", "marketing", "--bucket", "shop-data")
	if code != 0 || strings.Contains(out, `"Write"`) || strings.Contains(out, "s3:PutObject\"\n") || !strings.Contains(out, "arn:aws:s3:::shop-data/out/cohorts*/assignments-*") {
		t.Errorf("marketing policy:\n%s", out)
	}
	if code, _, msg := run(t, "policy", "iam", "intern", "--bucket", "b"); code != 2 || !strings.Contains(msg, "unknown role") {
		t.Errorf("unknown role: %d %s", code, msg)
	}
}

// The roles against the files a real pipeline writes: marketing reads the
// cohort exports and nothing with raw events, models or run state; the
// engineer reads factors but never recommendations (they name subjects);
// the steward reads cards, datasheets, lineage and the audit log.
func TestRolesAgainstALayout(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "demo", "--dir", dir, "--subjects", "300", "--days", "3"); code != 0 {
		t.Fatal(msg)
	}
	pol := privacy.DefaultPolicy()
	var keys []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	seen := map[string]bool{}
	for _, k := range keys {
		m, s, e := pol.Roles["marketing"].Allows(k, false), pol.Roles["steward"].Allows(k, false), pol.Roles["engineer"].Allows(k, false)
		switch {
		case strings.HasPrefix(k, "out/cohorts/") && strings.Contains(k, "/assignments-"):
			seen["assignments"] = true
			if !m || e {
				t.Errorf("%s: marketing %v, engineer %v", k, m, e)
			}
		case strings.Contains(k, "/recommendations-"):
			seen["recommendations"] = true
			if m || e || s {
				t.Errorf("%s names subjects: marketing %v, engineer %v, steward %v", k, m, e, s)
			}
		case strings.Contains(k, "/item_factors-"):
			seen["factors"] = true
			if !e || m {
				t.Errorf("%s: engineer %v, marketing %v", k, e, m)
			}
		case strings.Contains(k, "/model_card-") || strings.HasPrefix(k, "state/audit/") || strings.HasPrefix(k, "state/lineage/"):
			seen["steward"] = true
			if !s || m {
				t.Errorf("%s: steward %v, marketing %v", k, s, m)
			}
		case strings.HasPrefix(k, "shop/") || strings.HasPrefix(k, "ledger/"):
			if m || e {
				t.Errorf("%s: marketing %v, engineer %v", k, m, e)
			}
		}
		if !pol.Roles["scheduler"].Allows(k, false) && !strings.HasSuffix(k, ".prom") {
			t.Errorf("the scheduler cannot read %s", k)
		}
	}
	if len(seen) != 4 {
		t.Errorf("the layout lacks some outputs: %v", seen)
	}
}

func TestPolicyCheck(t *testing.T) {
	code, out, msg := run(t, "policy", "check", "--spec", "../../configs/nightly.yaml", "--root", "veil-demo")
	if code != 0 {
		t.Fatalf("nightly.yaml: %d %s\n%s", code, msg, out)
	}
	for _, tc := range []struct{ spec, root string }{{"nightly-zones.yaml", "veil-demo"}, {"nightly-s3.yaml", "s3://acme-veil"}} {
		if code, out, msg := run(t, "policy", "check", "--spec", "../../configs/"+tc.spec, "--root", tc.root, "--role", "scheduler"); code != 0 {
			t.Errorf("%s: %d %s\n%s", tc.spec, code, msg, out)
		}
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "s.yaml")
	os.WriteFile(spec, []byte("name: n\nstate: veil-demo/state\nsteps:\n  - name: a\n    segment: {events: veil-demo/shop/events, output: veil-demo/tmp/cohorts}\n  - name: b\n    segment: {events: /elsewhere/events, output: veil-demo/out/x}\n"), 0o644)
	code, out, msg = run(t, "policy", "check", "--spec", spec, "--root", "veil-demo")
	if code != 2 || !strings.Contains(out, "may not write tmp/cohorts") || !strings.Contains(out, "/elsewhere/events is outside the root") {
		t.Errorf("bad spec: %d %s\n%s", code, msg, out)
	}
}

// veil policy bucket: every role's statements of veil policy iam, scoped
// to its account, the Deny statements once for everyone, deletes under the
// ledger and the audit log denied to everyone.
func TestPolicyBucket(t *testing.T) {
	code, out, msg := run(t, "policy", "bucket", "scheduler", "marketing", "steward", "engineer", "--bucket", "shop-data", "--prefix", "veil",
		"--account", "marketing=mkt", "--sse", "AES256")
	if code != 0 {
		t.Fatalf("bucket: %d %s", code, msg)
	}
	var doc privacy.IAMPolicy
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Version != "2012-10-17" {
		t.Fatalf("not a policy: %v\n%s", err, out)
	}
	sids := map[string]privacy.IAMStatement{}
	for _, s := range doc.Statement {
		if _, dup := sids[s.Sid]; dup {
			t.Errorf("Sid %s twice", s.Sid)
		}
		sids[s.Sid] = s
	}
	for _, want := range []string{"SchedulerOpenTheBucket", "SchedulerListOwnPrefixes", "SchedulerRead", "SchedulerWrite", "MarketingListOwnPrefixes", "MarketingRead",
		"StewardRead", "EngineerRead", "DenyWrongEncryption", "DenyUnencryptedPuts", "DenyInsecureTransport", "DenyDeleteAppendOnly"} {
		if _, ok := sids[want]; !ok {
			t.Errorf("the bucket policy lacks %s:\n%s", want, out)
		}
	}
	for _, not := range []string{"MarketingWrite", "MarketingOpenTheBucket", "EngineerWrite", "StewardWrite", "SchedulerUseTheKMSKey"} {
		if _, ok := sids[not]; ok {
			t.Errorf("the bucket policy has %s", not)
		}
	}
	principal := func(sid string) string { b, _ := json.Marshal(sids[sid].Principal); return string(b) }
	if p := principal("MarketingRead"); p != `{"AWS":["mkt"]}` {
		t.Errorf("marketing's principal %s", p)
	}
	if p := principal("EngineerRead"); p != `{"AWS":["engineer"]}` {
		t.Errorf("engineer's principal %s", p)
	}
	for _, sid := range []string{"DenyWrongEncryption", "DenyInsecureTransport", "DenyDeleteAppendOnly"} {
		if p := principal(sid); p != `"*"` {
			t.Errorf("%s: principal %s, want everyone", sid, p)
		}
	}
	if r := strings.Join(sids["DenyDeleteAppendOnly"].Resource, " "); r != "arn:aws:s3:::shop-data/veil/ledger/* arn:aws:s3:::shop-data/veil/state/audit/*" {
		t.Errorf("append-only resources %s", r)
	}
	if l, _ := json.Marshal(sids["StewardListOwnPrefixes"].Condition); strings.Contains(string(l), "./") {
		t.Errorf("the steward lists the bucket's root for policy.yaml: %s", l)
	}
	for _, bad := range [][]string{{"intern"}, {"marketing", "marketing"}, {"marketing", "--account", "marketing"}} {
		if code, _, msg := run(t, append([]string{"policy", "bucket", "--bucket", "b"}, bad...)...); code != 2 {
			t.Errorf("%v: %d %s", bad, code, msg)
		}
	}
}

// veil policy check knows the release census: a spec whose steward reports
// (a step's steward: or the state's steward/ prefix) land where the
// marketing or engineer role reads is refused, though the scheduler may
// write there.
func TestPolicyCheckStewardReports(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, spec string
		refused    bool
	}{
		{"the state's steward prefix", "name: n\nstate: veil-demo/state\nsteps:\n  - name: a\n    segment: {events: veil-demo/shop/events, output: veil-demo/out/cohorts}\n", false},
		{"a step's steward beside marketing's exports", "name: n\nstate: veil-demo/state\nsteps:\n  - name: a\n    segment: {events: veil-demo/shop/events, output: veil-demo/out/cohorts, steward: veil-demo/out/cohorts-review}\n", true},
		{"a state below the cohort exports", "name: n\nstate: veil-demo/out/cohorts-state\nsteps:\n  - name: a\n    segment: {events: veil-demo/shop/events, output: veil-demo/out/cohorts}\n", true},
		{"a training step's steward beside the models", "name: n\nstate: veil-demo/state\nsteps:\n  - name: a\n    train: {events: veil-demo/shop/events, output: veil-demo/out/models, steward: veil-demo/out/cohorts/_steward, model: {dim: 4, epsilon: 1, delta: 1.0e-6}, budget: {ledger: veil-demo/ledger, epsilon: 20, delta: 1.0e-5}}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			os.WriteFile(spec, []byte(tc.spec), 0o644)
			code, out, msg := run(t, "policy", "check", "--spec", spec, "--root", "veil-demo")
			switch {
			case tc.refused && (code != 2 || !strings.Contains(out, "steward reports")):
				t.Errorf("not refused: %d %s\n%s", code, msg, out)
			case !tc.refused && code != 0:
				t.Errorf("refused: %d %s\n%s", code, msg, out)
			}
		})
	}
}
