package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

// An identifier in any column pseudonymize writes (not only the id column)
// is refused with privacy.ErrPII, redacted, and nothing is committed.
func TestPseudonymizeRefusesPII(t *testing.T) {
	key, err := pseudonym.NewKey(sha256.New().Sum([]byte("a test key of thirty-two bytes..")))
	if err != nil {
		t.Fatal(err)
	}
	head := "email,event_time,event_type,item_id,category,region\n" +
		"a@example.com,2026-11-01T10:00:00Z,view,i1,home/decor,GB\n"
	tests := []struct{ name, row, column string }{
		{"email in category", "b@example.com,2026-11-01T11:00:00Z,view,i2,jane.doe@example.com,GB\n", "category"},
		{"phone in item_id", "b@example.com,2026-11-01T11:00:00Z,view,+44 20 7946 0958,home,GB\n", "item_id"},
		{"IPv4 in region", "b@example.com,2026-11-01T11:00:00Z,view,i2,home,192.168.10.20\n", "region"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dataset.NewMemStore(t.Name())
			_, err := Pseudonymize(context.Background(), strings.NewReader(head+tc.row), "raw.csv", EventsCSV, "email", key, dataset.Ref{Store: s, Key: "events"}, "test")
			if !errors.Is(err, privacy.ErrPII) || !strings.Contains(err.Error(), `"`+tc.column+`"`) || !strings.Contains(err.Error(), "row 2") {
				t.Fatalf("error %v, want a PII finding in column %s, row 2", err, tc.column)
			}
			for _, raw := range []string{"jane.doe@example.com", "7946 0958", "192.168.10.20"} {
				if strings.Contains(err.Error(), raw) {
					t.Errorf("the error shows the raw value %q: %v", raw, err)
				}
			}
			if _, err := dataset.ReadManifest(context.Background(), s, "events"); err == nil {
				t.Error("a refused pseudonymize committed its output")
			}
		})
	}
	// A clean export passes.
	s := dataset.NewMemStore(t.Name())
	if _, err := Pseudonymize(context.Background(), strings.NewReader(head), "raw.csv", EventsCSV, "email", key, dataset.Ref{Store: s, Key: "events"}, "test"); err != nil {
		t.Fatal(err)
	}
}
