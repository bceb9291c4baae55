package jobs

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/storetest"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage"
)

// A pipeline whose state and outputs are on S3 (the real server of the
// tests) records the AWS caller identity as its principal: the ARN STS
// answers for the run's credentials. Without an STS (versitygw has none) it
// records the operating system user, and the run still succeeds.
func TestRunOnS3RecordsCallerIdentity(t *testing.T) {
	cfg := storetest.S3Bucket(t, "veil")
	root := storetest.S3URL(cfg)
	const arn = "arn:aws:sts::123456789012:assumed-role/veil-scheduler/nightly"
	var calls, signed int
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		calls++
		if r.Form.Get("Action") != "GetCallerIdentity" {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential="+os.Getenv("AWS_ACCESS_KEY_ID")+"/") && strings.Contains(a, "/sts/aws4_request") {
			signed++
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AROAEXAMPLE:nightly</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, arn)
	}))
	defer sts.Close()

	dir := t.TempDir()
	sc := synth.DefaultConfig()
	sc.Subjects, sc.Items, sc.Days = 400, 100, 10
	shop, _ := synth.New(sc)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := shop.Write(ctx, store, "", "test"); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`name: on-s3
state: %q
steps:
  - name: cohorts
    segment: {events: %s/shop/events, output: %q, kmeans: {k: "3"}, cohort_floor: {min_size: 20, small: merge}}
`, dataset.ChildURL(root, "state"), dir, dataset.ChildURL(root, "cohorts"))
	spec, err := ParseSpec("spec.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_ENDPOINT_URL_STS": sts.URL}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if _, err := Run(ctx, spec, Options{LogicalDate: day, Getenv: getenv}); err != nil {
		t.Fatal(err)
	}
	// No STS at the endpoint: the OS user.
	env["AWS_ENDPOINT_URL_STS"] = cfg.Endpoint
	if _, err := Run(ctx, spec, Options{LogicalDate: day.AddDate(0, 0, 1), Getenv: getenv}); err != nil {
		t.Fatal(err)
	}
	s3, err := open.Store(ctx, root, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := lineage.OpenAudit(s3, "state/audit").Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	osUser := lineage.Principal(func(string) string { return "" })
	var first, second int
	for _, r := range recs {
		switch {
		case r.LogicalDate == day.Format("2006-01-02") && r.Principal == arn:
			first++
		case r.LogicalDate != day.Format("2006-01-02") && r.Principal == osUser:
			second++
		default:
			t.Errorf("audit record %+v: principal %q", r, r.Principal)
		}
	}
	if first == 0 || second == 0 || calls != 1 || signed != 1 {
		t.Errorf("records with the ARN %d, with the OS user %d; STS calls %d, signed %d", first, second, calls, signed)
	}
}
