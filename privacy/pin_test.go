package privacy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/veil-privacy/veil/dataset"
)

// The deployment pins the data steward's policy (VEIL_POLICY): a job runs
// under it whatever it names, and a job that names another file is
// refused; the same file spelt differently is the same policy.
func TestResolvePolicyPinned(t *testing.T) {
	dir := t.TempDir()
	steward := filepath.Join(dir, "steward.yaml")
	own := filepath.Join(dir, "own.yaml")
	copyOf := filepath.Join(dir, "copy.yaml")
	data, err := os.ReadFile("../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(steward, data, 0o644)
	os.WriteFile(copyOf, data, 0o644)
	os.WriteFile(own, append(data, []byte("\n# the job's own\n")...), 0o644)
	pinned := dataset.URLOptions{Getenv: func(k string) string {
		if k == PolicyEnv {
			return steward
		}
		return ""
	}}
	unpinned := dataset.URLOptions{Getenv: func(string) string { return "" }}
	tests := []struct {
		name   string
		file   string
		opt    dataset.URLOptions
		want   string // the file the job runs under
		pinned bool
		err    error
	}{
		{"pinned, job names none", "", pinned, steward, true, nil},
		{"pinned, job names it", steward, pinned, steward, true, nil},
		{"pinned, job names it as a file URL", "file://" + steward, pinned, steward, true, nil},
		{"pinned, job names a copy", copyOf, pinned, steward, true, nil},
		{"pinned, job names its own", own, pinned, "", false, ErrRefused},
		{"pinned, job names a missing file", filepath.Join(dir, "nope.yaml"), pinned, "", false, ErrRefused},
		{"unpinned, job names its own", own, unpinned, own, false, nil},
		{"unpinned, job names none", "", unpinned, "", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jp, err := ResolvePolicy(context.Background(), tc.file, tc.opt)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if jp.File != tc.want || jp.Pinned != tc.pinned || jp.Policy == nil {
				t.Errorf("got file %q pinned %v, want %q %v", jp.File, jp.Pinned, tc.want, tc.pinned)
			}
			if (jp.File == "") != (jp.SHA256 == "") {
				t.Errorf("file %q with sha256 %q", jp.File, jp.SHA256)
			}
		})
	}
}
