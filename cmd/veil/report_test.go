package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image/png"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/configs"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/report"
)

var reportShots = flag.String("report-shots", "", "copy the browser test's screenshots of each page into this folder")

// TestReport runs a small nightly pipeline (configs/nightly.yaml on a
// shop of 300 customers, with the privacy-utility curve) whose spec asks
// for the steward's report (report: in the spec, written by veil run),
// writes the marketing build with veil report, and checks both sites:
// their pages and links, that the marketing build holds no steward-only
// number, and that a headless Chromium renders every page from disk.
func TestReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline")
	}
	// Without a browser the browser test skips, except under CI=true:
	// then the whole test fails at once, before the pipeline runs.
	chromium := findChromium()
	if chromium == "" && os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH under CI=true (scripts/test.sh installs Debian's chromium package)")
	}
	dir := t.TempDir()
	if code, _, msg := run(t, "generate", "--out", filepath.Join(dir, "shop"), "--subjects", "300", "--days", "10"); code != 0 {
		t.Fatal(msg)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(strings.Replace(string(demoText(configs.Policy, dir)), "epsilon: 20,", "epsilon: 100,", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VEIL_POLICY", policy)
	stewardSite, marketingSite := filepath.Join(dir, "site-steward"), filepath.Join(dir, "site-marketing")
	text := string(demoText(configs.Nightly, dir))
	text = strings.Replace(text, "dim: 32,", "dim: 8,", 1)
	text = strings.Replace(text, "baselines: true}", "baselines: true, curve: true, curve_epsilons: [2]}", 1)
	text += "report: {out: \"" + filepath.Join(dir, "site-{date}") + "\"}\n"
	spec := filepath.Join(dir, "nightly.yaml")
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, msg := run(t, "run", spec, "--logical-date", "2026-11-27")
	if code != 0 {
		t.Fatalf("veil run: exit %d: %s", code, msg)
	}
	if !strings.Contains(out, "report (steward build)") {
		t.Errorf("veil run did not say it wrote the report:\n%s", out)
	}
	if err := os.Rename(filepath.Join(dir, "site-2026-11-27"), stewardSite); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, msg = run(t, "report", "--spec", spec, "--logical-date", "2026-11-27", "--out", marketingSite, "--audience", "marketing")
	if code != 0 {
		t.Fatalf("veil report: exit %d: %s", code, msg)
	}
	t.Logf("%s(marketing build in %v)", out, time.Since(start))

	t.Run("pages", func(t *testing.T) {
		for _, tc := range []struct {
			site        string
			has, hasNot []string
		}{
			{stewardSite, []string{"index.html", "privacy.html", "model.html", "cohorts.html", "style.css"}, nil},
			// The built-in marketing role reads cohort exports only: no
			// model card, no steward report, no ledger.
			{marketingSite, []string{"index.html", "cohorts.html", "style.css"}, []string{"privacy.html", "model.html"}},
		} {
			for _, f := range tc.has {
				if _, err := os.Stat(filepath.Join(tc.site, f)); err != nil {
					t.Error(err)
				}
			}
			for _, f := range tc.hasNot {
				if _, err := os.Stat(filepath.Join(tc.site, f)); err == nil {
					t.Errorf("%s has %s", tc.site, f)
				}
			}
			if err := report.CheckLinks(tc.site); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("marketing holds no steward-only number", func(t *testing.T) {
		stewardOnly := stewardNumbers(t, dir)
		if len(stewardOnly) < 20 {
			t.Fatalf("only %d steward-only numbers found: the test would prove little", len(stewardOnly))
		}
		t.Logf("%d steward-only numbers (in the forms a page could print them)", len(stewardOnly))
		leaks := func(site string) []string {
			var found []string
			for tok, files := range siteNumbers(t, site) {
				if src, ok := stewardOnly[tok]; ok {
					found = append(found, tok+" (in "+files+"; steward report "+src+")")
				}
			}
			return found
		}
		if found := leaks(marketingSite); len(found) > 0 {
			t.Errorf("the marketing build holds %d steward-only numbers: %s", len(found), strings.Join(found, "; "))
		}
		// The steward build shows them: the check can see a leak.
		if found := leaks(stewardSite); len(found) == 0 {
			t.Error("the steward build shows no steward-only number: the check cannot see a leak")
		}
	})

	t.Run("browser", func(t *testing.T) {
		if chromium == "" {
			t.Skip("no chromium on PATH (apt-get install chromium; CI=true makes this a failure)")
		}
		for _, site := range []string{stewardSite, marketingSite} {
			pages, _ := filepath.Glob(filepath.Join(site, "*.html"))
			for _, page := range pages {
				name := filepath.Base(filepath.Dir(page)) + "-" + strings.TrimSuffix(filepath.Base(page), ".html")
				t.Run(name, func(t *testing.T) { browse(t, chromium, page, name) })
			}
		}
	})
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browse loads a page from disk in headless Chromium with the network
// shut (a proxy that is not there, every host unresolvable): the DOM must
// hold the page's heading, the screenshot must not be blank, and the
// console must stay silent (the pages have no script, so any message is
// an error: a failed load, a blocked request).
func browse(t *testing.T, chromium, page, name string) {
	tmp := t.TempDir()
	shot := filepath.Join(tmp, name+".png")
	flags := []string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--window-size=1280,2000",
		"--user-data-dir=" + filepath.Join(tmp, "profile"), "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
		"--enable-logging=stderr", "--v=0", "--no-first-run", "--disable-extensions", "--disable-background-networking"}
	url := "file://" + page
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, chromium, append(flags, "--screenshot="+shot, url)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, stderr.String())
	}
	dom, err := exec.CommandContext(ctx, chromium, append(flags, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if !bytes.Contains(dom, []byte("<h1>")) || !bytes.Contains(dom, []byte("</main>")) {
		t.Errorf("the DOM of %s has no heading or main:\n%.500s", page, dom)
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("console: %s", line)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	share := float64(ink) / float64(b.Dx()*b.Dy()/4)
	if share < 0.01 {
		t.Errorf("screenshot of %s is blank: %.4f of pixels not white", page, share)
	}
	t.Logf("%s: %dx%d, %.1f%% of pixels not white", name, b.Dx(), b.Dy(), 100*share)
	if *reportShots != "" {
		data, err := os.ReadFile(shot)
		if err == nil {
			err = os.MkdirAll(*reportShots, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(*reportShots, name+".png"), data, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}

// stewardNumbers are the numbers of the run's steward reports and budget
// ledger (exact counts, ε spent, evaluation on the private holdout, ...)
// that no release of the run holds: by the release census of the
// manifests, whatever a release file or the spec and policy say is not
// steward-only. Integers below 10 are left out (they are everywhere);
// other numbers are kept in the forms a page could print them in. The
// values are the file each came from.
func stewardNumbers(t *testing.T, dir string) map[string]string {
	t.Helper()
	steward, public := map[string]string{}, map[string]bool{}
	for _, f := range []string{"nightly.yaml", "policy.yaml"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		for _, tok := range numberTokens(string(data)) {
			public[tok] = true
		}
	}
	ctx := context.Background()
	store, err := dataset.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != dataset.ManifestName {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		if strings.HasPrefix(rel, "shop") || strings.HasPrefix(rel, "site-") {
			return nil
		}
		m, err := dataset.ReadManifest(ctx, store, filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		if m.Class != dataset.ClassSteward {
			// A release's manifest (file sizes, rows) is the release's:
			// the marketing role reads it.
			data, _ := os.ReadFile(p)
			for _, tok := range numberTokens(string(data)) {
				public[tok] = true
			}
		}
		for _, f := range m.Files {
			class := f.Class
			if class == "" {
				class = m.Class
			}
			ext := filepath.Ext(f.Key)
			if ext != ".json" && ext != ".md" && ext != ".csv" {
				continue
			}
			data, err := os.ReadFile(filepath.Join(filepath.Dir(p), f.Key))
			if err != nil {
				t.Fatal(err)
			}
			if class == dataset.ClassSteward {
				src := filepath.ToSlash(filepath.Join(rel, f.Key))
				if ext == ".json" {
					var v any
					if err := json.Unmarshal(data, &v); err != nil {
						t.Fatal(err)
					}
					for _, x := range jsonNumbers(v) {
						for _, form := range numberForms(x) {
							steward[form] = src
						}
					}
				}
				continue
			}
			for _, tok := range numberTokens(string(data)) {
				public[tok] = true
			}
		}
		return nil
	})
	// The ledger's records: what every run spent.
	ledgers, _ := filepath.Glob(filepath.Join(dir, "ledger", "*", "0*.json"))
	for _, p := range ledgers {
		var r struct{ Epsilon float64 }
		data, _ := os.ReadFile(p)
		if json.Unmarshal(data, &r) == nil {
			for _, form := range numberForms(r.Epsilon) {
				steward[form] = p
			}
		}
	}
	for tok := range public {
		delete(steward, tok)
	}
	return steward
}

func jsonNumbers(v any) []float64 {
	switch v := v.(type) {
	case float64:
		return []float64{v}
	case []any:
		var out []float64
		for _, x := range v {
			out = append(out, jsonNumbers(x)...)
		}
		return out
	case map[string]any:
		var out []float64
		for _, x := range v {
			out = append(out, jsonNumbers(x)...)
		}
		return out
	}
	return nil
}

// numberForms are the ways a page could print x: in full, and for a
// fraction at 3 and 4 decimals.
func numberForms(x float64) []string {
	x = math.Abs(x)
	if x == math.Trunc(x) {
		if x < 10 {
			return nil
		}
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}
	}
	forms := []string{strconv.FormatFloat(x, 'g', -1, 64)}
	if x >= 0.01 { // at 3 decimals, smaller ones are 0.00x: too common to mean anything
		for _, n := range []int{3, 4} {
			forms = append(forms, strconv.FormatFloat(x, 'f', n, 64))
		}
	}
	return forms
}

// siteNumbers are the number tokens of a site's text files, with the
// files that hold each.
func siteNumbers(t *testing.T, site string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(site, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) == ".png" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(site, p)
		text := string(data)
		switch filepath.Ext(p) {
		case ".css":
			return nil
		case ".html", ".svg":
			text = readableText(text)
		}
		for _, tok := range numberTokens(text) {
			if !strings.Contains(out[tok], rel) {
				// Where: the file and the text around the first one.
				i := strings.Index(text, tok)
				where := rel + ": …" + text[max(0, i-60):min(len(text), i+len(tok)+20)] + "…"
				out[tok] = strings.TrimPrefix(out[tok]+", "+where, ", ")
			}
		}
		return nil
	})
	return out
}

// readableText is what a reader of a page gets: its text and the values
// of the attributes that carry words (alt, title, aria-label), without
// the markup's own numbers (SVG coordinates, sizes), which match a
// steward's count by chance and say nothing.
func readableText(page string) string {
	var b strings.Builder
	attr := regexp.MustCompile(`(?i)\b(alt|title|aria-label)\s*=\s*"([^"]*)"`)
	for {
		i := strings.IndexByte(page, '<')
		if i < 0 {
			b.WriteString(page)
			return b.String()
		}
		b.WriteString(page[:i])
		b.WriteByte(' ')
		j := strings.IndexByte(page[i:], '>')
		if j < 0 {
			return b.String()
		}
		for _, m := range attr.FindAllStringSubmatch(page[i:i+j], -1) {
			b.WriteString(" " + m[2] + " ")
		}
		page = page[i+j+1:]
	}
}

// numberTokens splits text into numbers: runs of digits, points, dashes
// and colons (so a date or time is one token) that are not part of a word
// (a hex id, a run id).
func numberTokens(s string) []string {
	word := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
	var out []string
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' || (i > 0 && (word(s[i-1]) || s[i-1] == '.')) {
			i++
			continue
		}
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '-' || s[j] == ':') {
			j++
		}
		if j == len(s) || !word(s[j]) {
			out = append(out, strings.TrimRight(s[i:j], ".-:"))
		}
		i = j
	}
	return out
}

func TestReportExitCodes(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "s.yaml")
	os.WriteFile(spec, []byte("name: n\nstate: "+filepath.Join(dir, "state")+"\nsteps: [{name: a, segment: {events: e, output: o}}]\n"), 0o644)
	out := filepath.Join(dir, "site")
	for _, tc := range []struct {
		args  []string
		code  int
		words []string
	}{
		{[]string{"report"}, 2, []string{"--spec"}},
		{[]string{"report", "--spec", spec, "--out", out}, 2, []string{"--logical-date"}},
		{[]string{"report", "--spec", spec, "--out", out, "--logical-date", "2026-11-27", "--audience", "engineer"}, 2, []string{"engineer"}},
		{[]string{"report", "--spec", filepath.Join(dir, "absent.yaml"), "--out", out, "--logical-date", "2026-11-27"}, 2, []string{"absent.yaml"}},
		// A date no run completed: nothing to show.
		{[]string{"report", "--spec", spec, "--out", out, "--logical-date", "2026-11-27"}, 1, []string{"no completed run", "2026-11-27"}},
	} {
		code, _, msg := run(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, msg)
		}
		for _, w := range tc.words {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q does not say %q", tc.args, msg, w)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed report wrote its folder")
	}
}

func TestReadableText(t *testing.T) {
	page := `<svg><rect x="34" y="120" width="55"/><title>cohort 2: 1,234 people</title><text x="12">Bar 77</text></svg><img alt="size 88" src="a.png"><p aria-label="spent 0.5">hello 99</p>`
	got := strings.Join(numberTokens(readableText(page)), " ")
	if got != "2 1 234 77 88 0.5 99" {
		t.Errorf("numbers read: %q", got)
	}
}
