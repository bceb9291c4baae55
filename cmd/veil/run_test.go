package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/budget"
)

// TestMain lets tests run veil itself as a subprocess (to crash it and to
// send it signals): with VEIL_TEST_MAIN=1 the test binary is veil.
func TestMain(m *testing.M) {
	if os.Getenv("VEIL_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// veil runs the binary as a subprocess and returns its exit code and output.
func veil(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "VEIL_TEST_MAIN=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func writeSpec(t *testing.T, dir string, subjects int) string {
	t.Helper()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", fmt.Sprint(subjects), "--items", "200", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	spec := filepath.Join(dir, "nightly.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: nightly
state: %[1]s/state
lock: {ttl: 2s}
metrics: {textfile: %[1]s/veil.prom}
steps:
  - name: cohorts
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/cohorts
      kmeans: {k: "3", seed: 1}
      cohort_floor: {min_size: 30, small: merge}
      noisy_sizes_sigma: 3
      privacy: {epsilon: 1, delta: 1.0e-6, accountant: rdp}
      budget: {ledger: %[1]s/ledger, dataset: shop, epsilon: 10, delta: 1.0e-5, period: total}
  - name: more
    depends_on: [cohorts]
    segment:
      events: %[1]s/shop/events
      output: %[1]s/out/more
      kmeans: {k: "4", seed: 2}
      cohort_floor: {min_size: 30, small: merge}
`, dir)), 0o644)
	return spec
}

func ledgerRecords(t *testing.T, dir string) int {
	t.Helper()
	s, _ := dataset.NewFileStore(dir)
	recs, err := budget.Open(s, "ledger").Records(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// A run killed after its first step leaves its lock, which the next run on
// the same host takes over at once (the holder's process is gone); it then
// resumes from the second step and spends no
// budget twice. A run killed before switching the pointer is finished by the
// next one without running its steps again.
func TestCrashAndResume(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, 600)
	args := []string{"run", spec, "--logical-date", "2026-11-27", "--log-format", "json"}
	if code, out := veil(t, []string{"VEIL_FAILPOINT=after-step:cohorts"}, args...); code != 137 {
		t.Fatalf("crash: exit %d\n%s", code, out)
	}
	// The crashed holder was a process of this host that is gone: the next
	// run takes the lock over at once, says so, and resumes.
	code, out := veil(t, nil, args...)
	if code != 0 || !strings.Contains(out, "done earlier") || !strings.Contains(out, "completed as run") || !strings.Contains(out, "took the lock over") {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	if n := ledgerRecords(t, dir); n != 1 {
		t.Errorf("%d budget records after a crash and a resume, want 1", n)
	}
	if code, out := veil(t, nil, args...); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	// A forced run killed just before the pointer switch.
	force := append(args, "--force")
	if code, out := veil(t, []string{"VEIL_FAILPOINT=before-pointer"}, force...); code != 137 {
		t.Fatalf("crash before the pointer: exit %d\n%s", code, out)
	}
	time.Sleep(2100 * time.Millisecond)
	code, out = veil(t, nil, force...)
	if code != 0 || strings.Count(out, "done earlier") != 2 || !strings.Contains(out, "superseding") {
		t.Fatalf("finish the forced run: exit %d\n%s", code, out)
	}
	if n := ledgerRecords(t, dir); n != 2 {
		t.Errorf("%d budget records after two runs, want 2", n)
	}
	prom, _ := os.ReadFile(filepath.Join(dir, "veil.prom"))
	if !strings.Contains(string(prom), `veil_job_last_run_ok{job="nightly"} 1`) {
		t.Errorf("metrics textfile:\n%s", prom)
	}
}

// SIGTERM stops a run at the next step boundary or cancellation point: exit
// 1, the lock released at once, no pointer.
func TestSigterm(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, 6000)
	cmd := exec.Command(os.Args[0], "run", spec, "--logical-date", "2026-11-27")
	cmd.Env = append(os.Environ(), "VEIL_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Skipf("the run finished before the signal (%v): %s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "nightly", "dt=2026-11-27", "latest.json")); err == nil {
		t.Error("an interrupted run switched the pointer")
	}
	// The lock was released: the next run does not wait for the lease.
	code, o := veil(t, nil, "run", spec, "--logical-date", "2026-11-27")
	if code != 0 {
		t.Fatalf("run after SIGTERM: exit %d\n%s", code, o)
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, 400)
	if code, _, msg := run(t, "run", spec, "--logical-date", "2026-11-27"); code != 0 {
		t.Fatal(msg)
	}
	audit := filepath.Join(dir, "state", "audit")
	code, out, msg := run(t, "audit", "verify", audit)
	if code != 0 || !strings.Contains(out, "4 records, chain intact") {
		t.Fatalf("verify: %d %s\n%s", code, msg, out)
	}
	rec := filepath.Join(audit, "0000000002.json")
	data, _ := os.ReadFile(rec)
	os.WriteFile(rec, bytes.Replace(data, []byte(`"completed"`), []byte(`"failed!!!"`), 1), 0o644)
	code, _, msg = run(t, "audit", "verify", audit)
	if code != 1 || !strings.Contains(msg, "0000000003.json") {
		t.Errorf("tampered log: exit %d: %s", code, msg)
	}
}

// kill -9 inside a step (after the budget spend, between two files of an
// export, just before the manifest): nothing half-written is visible, and
// after the lease expires a rerun completes with one budget spend and
// outputs that hold exactly their manifests' files.
func TestKillInsideStep(t *testing.T) {
	for _, point := range []string{"budget:after-spend", "output:after-file:assignments.csv", "output:before-manifest"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			spec := writeSpec(t, dir, 500)
			args := []string{"run", spec, "--logical-date", "2026-11-27"}
			if code, out := veil(t, []string{"VEIL_FAILPOINT=" + point}, args...); code != 137 {
				t.Fatalf("crash: exit %d\n%s", code, out)
			}
			manifests, _ := filepath.Glob(filepath.Join(dir, "out", "*", "dt=*", "run=*", "_manifest.json"))
			if len(manifests) != 0 {
				t.Errorf("a crashed run committed %v", manifests)
			}
			time.Sleep(2100 * time.Millisecond)
			if code, out := veil(t, nil, args...); code != 0 {
				t.Fatalf("rerun: exit %d\n%s", code, out)
			}
			if n := ledgerRecords(t, dir); n != 1 {
				t.Errorf("%d budget records after a crash and a rerun, want 1", n)
			}
			for _, step := range []string{"cohorts", "more"} {
				outs, _ := filepath.Glob(filepath.Join(dir, "out", step, "dt=*", "run=*"))
				if len(outs) != 1 {
					t.Fatalf("%s: outputs %v, want one", step, outs)
				}
				store, _ := dataset.NewFileStore(outs[0])
				m, err := dataset.VerifyManifest(context.Background(), store, "")
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]bool{"_manifest.json": true}
				for _, f := range m.Files {
					want[f.Key] = true
				}
				entries, _ := os.ReadDir(outs[0])
				for _, e := range entries {
					if !want[e.Name()] {
						t.Errorf("%s: %s is not in the manifest", step, e.Name())
					}
				}
				if len(entries) != len(want) {
					t.Errorf("%s: %d files, manifest lists %d", step, len(entries), len(want)-1)
				}
			}
		})
	}
}
