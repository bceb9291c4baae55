package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
