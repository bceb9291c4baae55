package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pipeline with storage.encryption writes its outputs envelope-encrypted
// (no subject token readable on disk), records the key id in every
// manifest, and its outputs read back with the keys and not without them.
func TestEncryptedPipeline(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.MkdirAll(keys, 0o700)
	os.WriteFile(filepath.Join(keys, "k2026.key"), bytes.Repeat([]byte{0x5a}, 32), 0o600)
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "500", "--items", "200", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: nightly
state: %[1]s/state
storage: {encryption: {key_id: k2026, keys_dir: %[2]s}}
steps:
  - name: cohorts
    segment: {events: %[1]s/shop/events, output: %[1]s/out/cohorts, kmeans: {k: "3"}, cohort_floor: {min_size: 30, small: merge}}
`, dir, keys)), 0o644)
	code, out, msg := run(t, "run", spec, "--logical-date", "2026-11-27", "--json")
	if code != 0 {
		t.Fatalf("run: %d %s", code, msg)
	}
	var res struct {
		Steps []struct {
			Output string
			RunID  string `json:"run_id"`
		}
	}
	json.Unmarshal([]byte(out), &res)
	outDir := strings.TrimPrefix(res.Steps[0].Output, "file://")
	files, _ := os.ReadDir(outDir)
	sawManifest := false
	for _, f := range files {
		data, _ := os.ReadFile(filepath.Join(outDir, f.Name()))
		if f.Name() == "_manifest.json" {
			sawManifest = true
			if !strings.Contains(string(data), `"key_id": "k2026"`) || !strings.Contains(string(data), "veil-envelope-aes256gcm-64k") {
				t.Errorf("manifest lacks the key id:\n%s", data)
			}
			continue
		}
		if !bytes.HasPrefix(data, []byte("VEILENC1")) || bytes.Contains(data, []byte("tok_")) {
			t.Errorf("%s is not encrypted", f.Name())
		}
	}
	if !sawManifest || len(files) < 5 {
		t.Fatalf("output %s: %d files", outDir, len(files))
	}
	// The steward's verify reads through the keys; without them it fails
	// to decrypt (the lineage records are encrypted too).
	t.Setenv("VEIL_KEYS_DIR", keys)
	if code, text, msg := run(t, "lineage", "verify", res.Steps[0].RunID, "--spec", spec); code != 0 || !strings.Contains(text, "checksums match") {
		t.Errorf("verify with keys: %d %s\n%s", code, msg, text)
	}
	t.Setenv("VEIL_KEYS_DIR", "")
	if code, _, msg := run(t, "lineage", "verify", res.Steps[0].RunID, "--spec", spec); code != 1 {
		t.Errorf("verify without keys: %d %s", code, msg)
	}
	// A world-readable key is refused.
	os.Chmod(filepath.Join(keys, "k2026.key"), 0o644)
	if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-26"); code != 2 || !strings.Contains(msg, "chmod 600") {
		t.Errorf("world-readable key: %d %s", code, msg)
	}
}
