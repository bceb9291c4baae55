package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/train/mf"
)

// demoCensus is the class of every file the demo pipeline commits, by
// output kind and logical file name (the write id removed): release (read
// by people the guarantee protects subjects from: every number DP or
// public by declaration) or steward (exact counts, diagnostics, evaluation
// on private data, the contributors filter; in the state store only).
var demoCensus = map[string]string{
	// non-DP and DP segmentation releases
	"segment/assignments.parquet": dataset.ClassRelease,
	"segment/assignments.csv":     dataset.ClassRelease,
	"segment/profiles.parquet":    dataset.ClassRelease,
	"segment/profiles.csv":        dataset.ClassRelease,
	"segment/profiles.json":       dataset.ClassRelease,
	"segment/datasheet.md":        dataset.ClassRelease,
	"segment/datasheet.json":      dataset.ClassRelease,
	"segment/cohort_sizes.png":    dataset.ClassRelease,
	"segment/cohort_map.png":      dataset.ClassRelease,
	"segment/composition.json":    dataset.ClassRelease,
	"segment/composition.png":     dataset.ClassRelease,
	"segment/monitoring.json":     dataset.ClassRelease,
	"segment/monitoring.png":      dataset.ClassRelease,
	"segment/drift.json":          dataset.ClassRelease,
	"segment/drift.png":           dataset.ClassRelease,
	// the drift check's feature deciles: written by runs without DP only
	// (exact, like everything such a run releases; no role but the
	// scheduler and the steward reads it)
	"segment/feature_stats.json": dataset.ClassRelease,
	// training release
	"train/item_factors.parquet":    dataset.ClassRelease,
	"train/item_factors.arrow":      dataset.ClassRelease,
	"train/recommendations.parquet": dataset.ClassRelease,
	"train/nonpersonalized.parquet": dataset.ClassRelease,
	"train/model_card.json":         dataset.ClassRelease,
	"train/model_card.md":           dataset.ClassRelease,
	// steward reports
	"steward/steward_report.json":    dataset.ClassSteward,
	"steward/steward_appendix.md":    dataset.ClassSteward,
	"steward/model_card_steward.md":  dataset.ClassSteward,
	"steward/privacy_utility.png":    dataset.ClassSteward,
	"steward/exposure.png":           dataset.ClassSteward,
	"steward/contributors.bloom":     dataset.ClassSteward,
	"steward/contributors.key":       dataset.ClassSteward,
	"steward/cohort_sizes_exact.png": dataset.ClassSteward,
}

var writeID = regexp.MustCompile(`-[0-9a-f]{16}(\.[a-z]+)$`)

// TestDemoReleaseCensus runs the demo pipeline (configs/nightly.yaml:
// segmentation, DP k-means, DP training, here with the curve and the audit) and walks every output it
// commits: each file is in the census with its class, steward files live
// only in the state store, and no steward file is readable by the
// marketing or engineer role of the built-in policy.
func TestDemoReleaseCensus(t *testing.T) {
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "600", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	// configs/nightly.yaml on that shop, with the training step's
	// privacy-utility curve and privacy audit on and the shop's catalog as
	// its item universe.
	spec, err := demoSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range spec.Steps {
		if c := spec.Steps[i].Train; c != nil {
			c.Evaluation.Curve, c.Evaluation.CurveEpsilons = true, []float64{2, 4}
			ac := mf.DefaultAuditConfig()
			ac.Canaries = 200
			c.Evaluation.PrivacyAudit = &ac
			c.Catalog = filepath.Join(dir, "shop", "catalog")
		}
		if c := spec.Steps[i].Segment; c != nil {
			c.Floor.MinSize = 20
		}
	}
	// The steward's policy, as veil demo writes it, with room for the
	// curve and the audit.
	policy := strings.Replace(string(demoText(configs.Policy, dir)), "epsilon: 20,", "epsilon: 100,", 1)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644)
	if _, err := jobs.Run(context.Background(), spec, jobs.Options{LogicalDate: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Version: "test"}); err != nil {
		t.Fatal(err)
	}
	pol := privacy.DefaultPolicy()
	store, _ := dataset.NewFileStore(dir)
	var manifests []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == dataset.ManifestName {
			rel, _ := filepath.Rel(dir, filepath.Dir(p))
			manifests = append(manifests, filepath.ToSlash(rel))
		}
		return nil
	})
	seen := map[string]bool{}
	for _, prefix := range manifests {
		if strings.HasPrefix(prefix, "shop/") || strings.HasPrefix(prefix, "out/event-summary") {
			continue // inputs, and the shop's own summary of its synthetic events
		}
		m, err := dataset.VerifyManifest(context.Background(), store, prefix)
		if err != nil {
			t.Fatal(err)
		}
		kind := "segment"
		switch {
		case m.Class == dataset.ClassSteward:
			kind = "steward"
		case strings.HasPrefix(prefix, "out/models/"):
			kind = "train"
		}
		steward := strings.HasPrefix(prefix, "state/steward/")
		if m.Class == dataset.ClassSteward && !steward {
			t.Errorf("steward report %s outside the state store's steward prefix", prefix)
		}
		if m.Class != dataset.ClassSteward && steward {
			t.Errorf("%s of class %q under state/steward", prefix, m.Class)
		}
		for _, f := range m.Files {
			name := kind + "/" + writeID.ReplaceAllString(f.Key, "$1")
			want, ok := demoCensus[name]
			if !ok {
				t.Errorf("%s/%s (%s) is not in the census", prefix, f.Key, name)
				continue
			}
			seen[name] = true
			if f.Class != want || m.Class != want {
				t.Errorf("%s/%s: class %q in an output of class %q, want %q", prefix, f.Key, f.Class, m.Class, want)
			}
			key := prefix + "/" + f.Key
			if want == dataset.ClassSteward {
				for _, role := range []string{"marketing", "engineer"} {
					if pol.Roles[role].Allows(key, false) {
						t.Errorf("the %s role may read the steward file %s", role, key)
					}
				}
			}
		}
		if m.Class == dataset.ClassSteward {
			for _, role := range []string{"marketing", "engineer"} {
				if pol.Roles[role].Allows(prefix+"/"+dataset.ManifestName, false) {
					t.Errorf("the %s role may read the manifest of the steward report %s", role, prefix)
				}
			}
		}
	}
	for _, want := range []string{"segment/assignments.csv", "segment/profiles.json", "train/item_factors.parquet", "train/model_card.json",
		"steward/steward_report.json", "steward/contributors.bloom"} {
		if !seen[want] {
			t.Errorf("the demo committed no %s", want)
		}
	}
	// The run state (lineage, audit log, run records, the ledger) is for
	// the steward and the scheduler only.
	filepath.WalkDir(filepath.Join(dir, "state"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		for _, role := range []string{"marketing", "engineer"} {
			if pol.Roles[role].Allows(filepath.ToSlash(rel), false) {
				t.Errorf("the %s role may read %s", role, rel)
			}
		}
		return nil
	})
	if t.Failed() {
		inv, _ := json.MarshalIndent(slices.Sorted(func(yield func(string) bool) {
			for k := range seen {
				if !yield(k) {
					return
				}
			}
		}), "", " ")
		t.Logf("census entries seen: %s", inv)
	}
}
