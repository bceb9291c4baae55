package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// A training run without DP (ε = ∞) releases a non-private model of the
// shop's subjects: refused (privacy.ErrRefused, exit 3) before any data is
// read unless the steward's policy file allows it.
func TestNonPrivateRunNeedsTheStewardsSwitch(t *testing.T) {
	dir := shop(t, 300)
	cfg := jobConfig(dir)
	cfg.Model.Epsilon, cfg.Model.Epochs, cfg.Budget = math.Inf(1), 1, nil
	cfg.Evaluation.Baselines = false
	_, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil)
	if !errors.Is(err, privacy.ErrRefused) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a non-private run without the switch: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "out")); serr == nil {
		t.Error("the refused run wrote outputs")
	}
	pol, _ := os.ReadFile("../configs/policy.yaml")
	cfg.Policy = filepath.Join(dir, "policy.yaml")
	os.WriteFile(cfg.Policy, []byte(strings.Replace(string(pol), "non_private: deny", "non_private: allow", 1)), 0o644)
	if _, err := Run(context.Background(), cfg, logical, dataset.URLOptions{}, nil); err != nil {
		t.Fatalf("with the steward's switch: %v", err)
	}
}
