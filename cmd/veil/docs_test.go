package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// docs/cli is the command reference generated from the commands' help:
// regenerating it into a temporary folder gives the committed files, byte
// for byte, and no others.
func TestDocsCLI(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeCLIDocs(dir); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	have, _ := filepath.Glob(filepath.Join("..", "..", "docs", "cli", "*.md"))
	names := func(paths []string) []string {
		var n []string
		for _, p := range paths {
			n = append(n, filepath.Base(p))
		}
		return n
	}
	stale := false
	for _, name := range names(want) {
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli", name))
		if err != nil {
			t.Errorf("docs/cli/%s is missing", name)
			stale = true
			continue
		}
		if w, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, w) {
			t.Errorf("docs/cli/%s differs from the command's help", name)
			stale = true
		}
	}
	for _, name := range names(have) {
		if !slices.Contains(names(want), name) {
			t.Errorf("docs/cli/%s documents no command", name)
			stale = true
		}
	}
	if stale {
		t.Error("docs/cli is stale: run `go generate ./cmd/veil` to update it")
	}
	// Generating twice gives the same bytes: no date, no map order, no
	// machine-dependent default.
	again := cliDocs()
	for _, name := range names(want) {
		if w, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(again[name], w) {
			t.Errorf("%s: two generations differ", name)
		}
	}
}
