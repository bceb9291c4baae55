package release

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every entry point spends through Spend: no code outside privacy/budget
// and privacy/release builds a ledger request, spends from a ledger or
// resolves a ledger identity on its own (which would skip the steward's
// budgets). veil budget show and veil report may open the ledger and
// resolve a name to read a status, never to spend. The scan covers the Beam module too.
func TestOneReleasePath(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the repository root %s has no go.mod: %v", root, err)
	}
	spend := regexp.MustCompile(`(\w+)\.Spend\(`)
	forbidden := []*regexp.Regexp{regexp.MustCompile(`budget\.Request\{`), regexp.MustCompile(`budget\.Identity\(`), regexp.MustCompile(`budget\.Open\(`)}
	// Readers of the ledger, not spenders.
	readers := map[string]bool{"cmd/veil/cmd_budget.go": true, "report/collect.go": true}
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "veil-demo" || rel == "privacy/budget" || rel == "privacy/release" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for i, line := range strings.Split(string(data), "\n") {
			if m := spend.FindStringSubmatch(line); m != nil && m[1] != "release" {
				t.Errorf("%s:%d spends outside the release path: %s", rel, i+1, strings.TrimSpace(line))
			}
			if readers[rel] {
				continue
			}
			for _, re := range forbidden {
				if re.MatchString(line) {
					t.Errorf("%s:%d: %s outside the release path (use release.Spend, release.Resolve or release.Identity): %s", rel, i+1, re, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Errorf("scanned %d Go files: the walk missed the repository", files)
	}
}
