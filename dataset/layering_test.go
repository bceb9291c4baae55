package dataset_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayering locks DESIGN.md's dependency direction for dataset: no
// package under dataset/, its tests included, depends (directly or through
// internal/) on a veil package outside dataset/ and internal/. Ingestion,
// which needs privacy's pseudonyms, lives in ingest/ above it.
//
// It parses the imports itself rather than running go list, so that the
// test cache sees the files it read and a new import reruns it.
func TestLayering(t *testing.T) {
	const module = "github.com/veil-privacy/veil/"
	allowed := func(rel string) bool {
		return rel == "dataset" || strings.HasPrefix(rel, "dataset/") || rel == "internal" || strings.HasPrefix(rel, "internal/")
	}
	// imports returns the veil imports of the .go files in and under dir
	// (the repository root is ".."), keyed by the importing file.
	imports := func(dir string, recursive bool) map[string][]string {
		got := map[string][]string{}
		err := filepath.WalkDir(filepath.Join("..", dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); name == "testdata" || (!recursive && p != filepath.Join("..", dir)) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, spec := range f.Imports {
				path, _ := strconv.Unquote(spec.Path.Value)
				if rel, ok := strings.CutPrefix(path, module); ok {
					got[p] = append(got[p], rel)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	queue := []map[string][]string{imports("dataset", true)}
	if len(queue[0]) == 0 {
		t.Fatal("found no veil imports under dataset/")
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		files := queue[0]
		queue = queue[1:]
		for file, deps := range files {
			for _, rel := range deps {
				if !allowed(rel) {
					t.Errorf("%s imports %s%s: dataset/ may depend only on dataset/ and internal/ (DESIGN.md, Layout)", file, module, rel)
				}
				if strings.HasPrefix(rel, "internal/") && !seen[rel] {
					seen[rel] = true
					queue = append(queue, imports(rel, false))
				}
			}
		}
	}
}
