package report

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	linkAttr = regexp.MustCompile(`\s(?:href|src)="([^"]*)"`)
	idAttr   = regexp.MustCompile(`\sid="([^"]*)"`)
)

// CheckLinks checks every href and src of the HTML pages in dir: each
// must name a file of the site (and an id of that page, for a fragment),
// never a URL that leaves it. It returns every broken link, joined.
func CheckLinks(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil {
		return err
	}
	if len(pages) == 0 {
		return fmt.Errorf("%w: no page in %s", ErrBrokenLink, dir)
	}
	ids := map[string]map[string]bool{}
	idsOf := func(name string) (map[string]bool, error) {
		if m, ok := ids[name]; ok {
			return m, nil
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		m := map[string]bool{}
		for _, g := range idAttr.FindAllStringSubmatch(string(data), -1) {
			m[g[1]] = true
		}
		ids[name] = m
		return m, nil
	}
	var bad []string
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		page := filepath.Base(p)
		for _, g := range linkAttr.FindAllStringSubmatch(string(data), -1) {
			link := g[1]
			u, err := url.Parse(link)
			if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/") {
				bad = append(bad, fmt.Sprintf("%s: %s leaves the site", page, link))
				continue
			}
			target := page
			if u.Path != "" {
				target = path.Clean(u.Path)
			}
			if strings.HasPrefix(target, "../") {
				bad = append(bad, fmt.Sprintf("%s: %s leaves the site", page, link))
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(target))); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %s: no such file", page, link))
				continue
			}
			if u.Fragment != "" && strings.HasSuffix(target, ".html") {
				m, err := idsOf(target)
				if err != nil {
					return err
				}
				if !m[u.Fragment] {
					bad = append(bad, fmt.Sprintf("%s: %s: no id %q", page, link, u.Fragment))
				}
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrBrokenLink, strings.Join(bad, "; "))
	}
	return nil
}
