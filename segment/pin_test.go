package segment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
)

// A job that names no policy reads, and charges, the retention window of
// the policy the deployment pins (VEIL_POLICY), not the built-in one.
func TestWindowDaysPinnedPolicy(t *testing.T) {
	data, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pinned := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pinned, []byte(strings.ReplaceAll(string(data), "retention_days: 365", "retention_days: 30")), 0o644)
	opt := dataset.URLOptions{Getenv: func(k string) string {
		if k == privacy.PolicyEnv {
			return pinned
		}
		return ""
	}}
	cfg := DefaultConfig()
	if days, err := cfg.WindowDays(ctx, opt); err != nil || days != 30 {
		t.Errorf("window %d days (%v), want the pinned policy's 30", days, err)
	}
}
