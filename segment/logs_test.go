package segment

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
)

// A DP segmentation logs no exact count of the private data at any level
// (scheduler logs are read by many), and says where the steward report is.
func TestDPRunLogsNoExactCounts(t *testing.T) {
	dir, _ := shop(t, 400, 10)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := Run(ctx, dpConfig(dir), logical, dataset.URLOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for _, k := range []string{"subjects", "events", "exported", "suppressed", "inertia", "silhouette"} {
			if _, ok := rec[k]; ok {
				t.Errorf("a DP run logs %s: %s", k, line)
			}
		}
	}
	if !strings.Contains(logs.String(), rep.StewardReport) {
		t.Errorf("the logs do not say where the steward report is:\n%s", logs.String())
	}
}
