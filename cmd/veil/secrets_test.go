package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Keys and credentials never reach logs, lineage, the audit log, outputs,
// cards or error messages: a pipeline runs with known secret values (the
// pseudonymization key and the lineage API key from the environment, AWS
// credentials in the environment), debug JSON logs on, and a lineage HTTP
// endpoint that records what it receives; then every file it wrote, every
// line it logged and every request the endpoint saw are searched for the
// secrets and their common encodings. A bad key's error must not echo it.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	key := "veil-secret-key-7f3a9c2e5b1d8f4a6c0e2b9d7f5a3c1e"
	apiKey := "lineage-api-key-0b8d6f4a2c9e7b5d3f1a"
	awsSecret := "aws-secret-9e7c5a3f1d0b8e6c4a2f"
	var received strings.Builder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(&received, "%s %s %v %s\n", r.Method, r.URL, r.Header, body)
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	raw, _ := filepath.Abs("testdata/online_retail_sample.csv")
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--items", "200", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: nightly
state: %[1]s/state
lineage: {http: %[2]s, api_key_env: VEIL_TEST_LINEAGE_KEY}
steps:
  - name: ingest
    pseudonymize: {in: %[3]s, out: %[1]s/retail/events, id_column: CustomerID, key_env: VEIL_TEST_PSEUDONYM_KEY}
  - name: cohorts
    segment: {events: %[1]s/shop/events, output: %[1]s/out/cohorts, kmeans: {k: "3"}, cohort_floor: {min_size: 30, small: merge}}
  - name: recs
    train:
      events: %[1]s/shop/events
      output: %[1]s/out/models
      model: {dim: 8, epsilon: 4, accountant: rdp}
      budget: {ledger: %[1]s/ledger, epsilon: 20, delta: 1.0e-5, period: month}
`, dir, srv.URL, raw)), 0o644)
	env := []string{"VEIL_TEST_PSEUDONYM_KEY=" + key, "VEIL_TEST_LINEAGE_KEY=" + apiKey, "AWS_SECRET_ACCESS_KEY=" + awsSecret, "AWS_ACCESS_KEY_ID=AKIAVEILTEST"}
	code, logs := veil(t, env, "run", spec, "--logical-date", "2026-11-27", "--log-format", "json", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("run: %d\n%s", code, logs)
	}
	// The pipeline's pseudonymize step writes the shop's catalog too.
	if _, err := os.Stat(filepath.Join(dir, "retail", "catalog", "_manifest.json")); err != nil {
		t.Errorf("the pseudonymize step wrote no catalog: %v", err)
	}
	if !strings.Contains(received.String(), "POST") || !strings.Contains(received.String(), "Bearer "+apiKey) {
		t.Fatalf("the lineage endpoint received no authorized event:\n%.500s", received.String())
	}
	// A key that is too short is refused without being echoed.
	os.WriteFile(spec, []byte(fmt.Sprintf("name: ingest\nstate: %[1]s/state2\nsteps:\n  - name: ingest\n    pseudonymize: {in: %[2]s, out: %[1]s/retail2/events, id_column: CustomerID, key_env: VEIL_TEST_PSEUDONYM_KEY}\n", dir, raw)), 0o644)
	short := "short-secret-x1"
	code2, logs2 := veil(t, []string{"VEIL_TEST_PSEUDONYM_KEY=" + short}, "run", spec, "--logical-date", "2026-11-27", "--log-format", "json")
	if code2 != 2 {
		t.Errorf("short key: exit %d\n%s", code2, logs2)
	}
	secrets := map[string]string{"pseudonymization key": key, "lineage API key": apiKey, "AWS secret": awsSecret, "short key": short}
	forms := func(s string) []string {
		return []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
	}
	check := func(where, text string) {
		for name, s := range secrets {
			for _, f := range forms(s) {
				if strings.Contains(text, f) {
					t.Errorf("the %s appears in %s", name, where)
				}
			}
		}
	}
	check("the logs", logs+logs2)
	// The lineage endpoint sees the API key in its Authorization header, as
	// it must; nothing else of it.
	check("what the lineage endpoint received", strings.ReplaceAll(received.String(), "Bearer "+apiKey, "Bearer (the key)"))
	n := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || p == spec {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil {
			check(p, string(data))
			n++
		}
		return nil
	})
	if n < 30 {
		t.Errorf("only %d files searched", n)
	}
}
