package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// A pipeline with a training step without DP is refused as a whole before
// its first step when the policy does not allow non-private releases:
// nothing is committed, not even the steps before it.
func TestNonPrivateTrainStepRefusedBeforeAnyStep(t *testing.T) {
	dir := t.TempDir()
	doc := fmt.Sprintf(`name: nightly
state: %[1]s/state
purposes: [segmentation, marketing, personalization]
steps:
  - name: cohorts
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/cohorts
      kmeans: {k: "3", n_init: 1, seed: 1}
  - name: recs
    depends_on: [cohorts]
    train:
      events: %[1]s/shop/events
      output: %[1]s/out/models
      model: {dim: 4, epsilon: .inf}
`, dir)
	path := filepath.Join(dir, "spec.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, spec, Options{LogicalDate: day, Version: "test"})
	if !errors.Is(err, privacy.ErrRefused) || !strings.Contains(err.Error(), "recs") {
		t.Fatalf("a non-private training step without the steward's switch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a refused pipeline wrote outputs")
	}
}

// A job cannot switch non-private training on with a policy of its own
// when the deployment pins the steward's (VEIL_POLICY), which denies it.
func TestNonPrivateOwnPolicyUnderPinnedDeny(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	steward := filepath.Join(dir, "steward.yaml")
	os.WriteFile(steward, data, 0o644)
	own := filepath.Join(dir, "own.yaml")
	os.WriteFile(own, []byte(strings.Replace(string(data), "non_private: deny", "non_private: allow", 1)), 0o644)
	if !strings.Contains(string(data), "non_private: deny") {
		t.Fatal("configs/policy.yaml does not deny non-private releases")
	}
	doc := fmt.Sprintf(`name: nightly
state: %[1]s/state
purposes: [personalization]
steps:
  - name: recs
    train:
      events: %[1]s/shop/events
      output: %[1]s/out/models
      policy: %[2]s
      model: {dim: 4, epsilon: .inf}
`, dir, own)
	path := filepath.Join(dir, "spec.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == privacy.PolicyEnv {
			return steward
		}
		return ""
	}
	_, err = Run(ctx, spec, Options{LogicalDate: day, Version: "test", Getenv: getenv, URL: dataset.URLOptions{Getenv: getenv}})
	if !errors.Is(err, privacy.ErrRefused) || !strings.Contains(err.Error(), "recs") {
		t.Fatalf("a non-private step with its own policy under the pinned one: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a refused pipeline wrote outputs")
	}
	// The switch is the pinned policy's: a step that names none runs
	// under it (here it fails later, on the missing shop).
	os.WriteFile(steward, []byte(strings.Replace(string(data), "non_private: deny", "non_private: allow", 1)), 0o644)
	os.WriteFile(path, []byte(strings.Replace(doc, "policy: "+own, "policy: \"\"", 1)), 0o644)
	if spec, err = LoadSpec(path); err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, spec, Options{LogicalDate: day, Version: "test", Getenv: getenv, URL: dataset.URLOptions{Getenv: getenv}})
	if err == nil || errors.Is(err, privacy.ErrRefused) {
		t.Errorf("a non-private step under a pinned policy that allows it: %v", err)
	}
}
