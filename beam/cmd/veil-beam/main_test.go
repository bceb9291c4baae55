package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/dataset/synth"
	"github.com/veil-privacy/veil/lineage/lineagetest"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

// The command, built as users build it, prepares a shop's features on
// Prism and exits with veil's codes.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "veil-beam")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := synth.DefaultConfig()
	cfg.Subjects, cfg.Items, cfg.Days = 600, 100, 10
	s, _ := synth.New(cfg)
	store, _ := dataset.NewFileStore(filepath.Join(dir, "shop"))
	if _, err := s.Write(context.Background(), store, "", "test"); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(dir, "segment.yaml")
	os.WriteFile(job, []byte(fmt.Sprintf("events: %s/shop/events\noutput: %s/out\n", dir, dir)), 0o644)
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stdout.String(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	code, out, errs := run("prepare", "--config", job, "--logical-date", "2026-11-27", "--out", filepath.Join(dir, "prepared"), "--shards", "3", "--json",
		"--lineage", filepath.Join(dir, "lineage"))
	if code != 0 {
		t.Fatalf("prepare: exit %d\n%s", code, errs)
	}
	var rep segment.PrepareReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Engine != "beam:prism" || rep.Subjects == 0 || rep.Shards != 3 {
		t.Fatalf("report %+v (%v)", rep, err)
	}
	// Fit on one machine, assign on Prism.
	ref, _ := open.Ref(context.Background(), rep.Output, dataset.URLOptions{})
	cfgJob, _ := segment.LoadConfig(job)
	m, _, err := segment.Fit(context.Background(), cfgJob, ref)
	if err != nil {
		t.Fatal(err)
	}
	modelURL := filepath.Join(dir, "model.json")
	if err := segment.WriteModel(context.Background(), modelURL, m, dataset.URLOptions{}); err != nil {
		t.Fatal(err)
	}
	// The floor holds on the exact exported counts: a small shop needs a
	// floor below the default 100 to export any cohort.
	assignJob := filepath.Join(dir, "segment-assign.yaml")
	os.WriteFile(assignJob, []byte(fmt.Sprintf("events: %s/shop/events\noutput: %s/out\ncohort_floor:\n  min_size: 50\n", dir, dir)), 0o644)
	code, out, errs = run("assign", "--config", assignJob, "--logical-date", "2026-11-27", "--prepared", rep.Output, "--model", modelURL, "--json",
		"--lineage", filepath.Join(dir, "lineage"))
	var arep segment.AssignReport
	if err := json.Unmarshal([]byte(out), &arep); code != 0 || err != nil || arep.Subjects != int64(rep.Subjects) || arep.Exported == 0 || len(arep.Cohorts) == 0 {
		t.Fatalf("assign: exit %d, report %+v\n%s", code, arep, errs)
	}

	// The training job's interactions.
	trainJob := filepath.Join(dir, "train.yaml")
	os.WriteFile(trainJob, []byte(fmt.Sprintf("events: %s/shop/events\noutput: %s/models\nmodel: {epsilon: .inf}\n", dir, dir)), 0o644)
	code, out, errs = run("prepare-interactions", "--config", trainJob, "--logical-date", "2026-11-27", "--out", filepath.Join(dir, "interactions"), "--json",
		"--lineage", filepath.Join(dir, "lineage"))
	var irep train.InteractionsReport
	if err := json.Unmarshal([]byte(out), &irep); code != 0 || err != nil || irep.Interactions == 0 || irep.Engine != "beam:prism" {
		t.Fatalf("prepare-interactions: exit %d, report %+v\n%s", code, irep, errs)
	}

	// The runs' lineage events are valid OpenLineage and name Beam and the
	// runner.
	v, err := lineagetest.New("../../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "lineage", "*", "*", "*.json"))
	var kinds []string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if err := v.Validate(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		var ev struct {
			EventType string
			Run       struct {
				Facets struct {
					Engine struct{ Name, Version string } `json:"processing_engine"`
				}
			}
		}
		json.Unmarshal(data, &ev)
		if ev.Run.Facets.Engine.Name != "Apache Beam (prism runner)" || ev.Run.Facets.Engine.Version != "2.77.0" {
			t.Errorf("%s: processing_engine %+v", f, ev.Run.Facets.Engine)
		}
		kinds = append(kinds, ev.EventType)
	}
	if strings.Join(kinds, " ") != "START COMPLETE START COMPLETE START COMPLETE" {
		t.Errorf("lineage events %v, want START COMPLETE three times", kinds)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"prepare", "--config", job}, 2, "required"},
		{[]string{"prepare-interactions", "--config", job, "--logical-date", "2026-11-27", "--out", dir}, 2, "epsilon"},
		{[]string{"assign", "--config", job, "--logical-date", "2026-11-27"}, 2, "--prepared and --model"},
		{[]string{"assign", "--config", job, "--logical-date", "2026-11-27", "--prepared", rep.Output, "--model", filepath.Join(dir, "absent.json")}, 1, "absent.json"},
		{[]string{"prepare", "--config", filepath.Join(dir, "absent.yaml"), "--logical-date", "2026-11-27", "--out", dir}, 2, "absent.yaml"},
		{[]string{"prepare", "--config", job, "--logical-date", "27.11.2026", "--out", dir}, 2, "YYYY-MM-DD"},
		{[]string{"prepare", "--config", job, "--logical-date", "2026-11-27", "--out", dir, "--shards", "0"}, 2, "shards"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.code, errs)
		}
	}
}
