package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// onePixelPNG is a valid 1×1 PNG, the fixture's plot.
var onePixelPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

func fixture(t *testing.T) *Site {
	t.Helper()
	data, err := os.ReadFile("testdata/site.json")
	if err != nil {
		t.Fatal(err)
	}
	var s Site
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.Assets = map[string][]byte{"files/cohorts-dp/cohort_sizes.png": onePixelPNG}
	return &s
}

// marketing is the fixture as a marketing build holds it.
func marketing(s *Site) *Site {
	m := *s
	m.Audience, m.Privacy, m.Models = Marketing, nil, nil
	m.Steps = append([]Step(nil), s.Steps...)
	for i := range m.Steps {
		m.Steps[i].Outputs = m.Steps[i].Outputs[:1]
	}
	m.Cohorts = append([]Cohorts(nil), s.Cohorts...)
	for i, c := range m.Cohorts {
		c.Exact = false
		c.Profiles = append([]Profile(nil), c.Profiles...)
		for j := range c.Profiles {
			c.Profiles[j].Size = 0
		}
		m.Cohorts[i] = c
	}
	return &m
}

// TestGolden renders the fixture's steward and marketing builds and
// compares every file with testdata/golden (go test ./report -update
// rewrites them). Rendering twice gives the same bytes.
func TestGolden(t *testing.T) {
	site := fixture(t)
	for _, tc := range []struct {
		name string
		site *Site
	}{{"steward", site}, {"marketing", marketing(site)}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := Write(dir, tc.site)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Write(t.TempDir(), tc.site)
			if err != nil || strings.Join(again, ",") != strings.Join(files, ",") {
				t.Fatalf("second write: %v, %v", again, err)
			}
			if err := CheckLinks(dir); err != nil {
				t.Error(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name)
			for _, f := range files {
				if !strings.HasSuffix(f, ".html") && !strings.HasSuffix(f, ".css") {
					continue
				}
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				want := filepath.Join(golden, f)
				if *update {
					if err := os.MkdirAll(golden, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(want, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				w, err := os.ReadFile(want)
				if err != nil {
					t.Fatalf("%v (go test ./report -update writes it)", err)
				}
				if !bytes.Equal(got, w) {
					t.Errorf("%s differs from %s (go test ./report -update rewrites it)", f, want)
				}
			}
		})
	}
}

// TestMarketingBuildPages checks which pages each build has: the privacy
// and model pages are the steward's.
func TestMarketingBuildPages(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, marketing(fixture(t))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"privacy.html", "model.html"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("marketing build has %s (%v)", p, err)
		}
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(index, []byte("privacy.html")) || bytes.Contains(index, []byte("steward report")) {
		t.Error("the marketing build's run page links the privacy page or names a steward report")
	}
}

func TestCheckLinks(t *testing.T) {
	for _, tc := range []struct {
		name, html string
		ok         bool
	}{
		{"page and fragment", `<a href="index.html#x">a</a><p id="x">`, true},
		{"same-page fragment", `<a href="#x">a</a><p id="x">`, true},
		{"missing fragment", `<a href="#y">a</a><p id="x">`, false},
		{"missing file", `<img src="files/a.png">`, false},
		{"network", `<link rel="stylesheet" href="https://cdn.example.com/a.css">`, false},
		{"protocol-relative", `<script src="//cdn.example.com/a.js"></script>`, false},
		{"absolute path", `<a href="/etc/passwd">a</a>`, false},
		{"outside", `<a href="../secret.html">a</a>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(tc.html), 0o644); err != nil {
				t.Fatal(err)
			}
			err := CheckLinks(dir)
			if (err == nil) != tc.ok {
				t.Errorf("CheckLinks = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBrokenLink) {
				t.Errorf("error %v is not ErrBrokenLink", err)
			}
		})
	}
}

func TestParseAudience(t *testing.T) {
	for _, s := range []string{"steward", "marketing"} {
		if a, err := ParseAudience(s); err != nil || string(a) != s {
			t.Errorf("ParseAudience(%q) = %q, %v", s, a, err)
		}
	}
	if _, err := ParseAudience("engineer"); err == nil {
		t.Error("ParseAudience(engineer): no error")
	}
}

func TestMarkdown(t *testing.T) {
	src := "# Card\n\nSome **bold** and `code` <b>not html</b>, a [link](https://example.com) and ![a plot](p.png).\nSame paragraph.\n\n- one\n  - one.a\n- two\n\n| a | b |\n|---|---:|\n| 1 | 2 |\n"
	want := `<h4 class="md">Card</h4>
<p>Some <strong>bold</strong> and <code>code</code> &lt;b&gt;not html&lt;/b&gt;, a link and (figure: a plot, shown on this page). Same paragraph.</p>
<ul>
<li>one<ul><li>one.a</li></ul></li>
<li>two</li>
</ul>
<table class="md">
<thead><tr><th scope="col">a</th><th scope="col">b</th></tr></thead>
<tbody>
<tr><td>1</td><td>2</td></tr>
</tbody></table>
`
	if got := string(markdown(src, 3)); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

// Writing a marketing build where a steward build was leaves no steward
// page behind; a folder of other files is refused.
func TestWriteReplacesAnEarlierSite(t *testing.T) {
	dir := t.TempDir()
	site := fixture(t)
	if _, err := Write(dir, site); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, marketing(site)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"privacy.html", "model.html"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s stayed from the steward build", p)
		}
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if _, err := Write(other, site); err == nil {
		t.Error("Write into a folder of other files: no error")
	}
}
