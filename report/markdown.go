package report

import (
	"html/template"
	"regexp"
	"strings"
)

// The cards and datasheets veil writes are Markdown of a small dialect:
// headings, paragraphs, lists (one level of nesting), pipe tables, bold,
// code spans, links and images. markdown renders that dialect; anything
// else reads as text. Text is escaped before any markup is added, and
// links and images are rendered as their text: every link of the site
// stays inside it, and the plots a datasheet embeds are on the page
// already.

var (
	mdImage = regexp.MustCompile(`!\[([^\]]*)\]\([^)]*\)`)
	mdLink  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	mdCode  = regexp.MustCompile("`([^`]+)`")
	mdBold  = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// inline renders a line's spans.
func inline(s string) string {
	s = mdImage.ReplaceAllString(s, "(figure: $1, shown on this page)")
	s = mdLink.ReplaceAllString(s, "$1")
	s = template.HTMLEscapeString(s)
	s = mdCode.ReplaceAllString(s, "<code>$1</code>")
	return mdBold.ReplaceAllString(s, "<strong>$1</strong>")
}

func cells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	cs := strings.Split(line, "|")
	for i := range cs {
		cs[i] = strings.TrimSpace(cs[i])
	}
	return cs
}

func isRule(line string) bool {
	return strings.Trim(line, "|-: ") == "" && strings.Contains(line, "-")
}

// markdown renders src as HTML, its headings moved down by shift levels
// (at most h6) to sit under the page's own.
func markdown(src string, shift int) template.HTML {
	var b strings.Builder
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>\n")
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			flush()
		case strings.HasPrefix(trimmed, "#"):
			flush()
			level := len(trimmed) - len(strings.TrimLeft(trimmed, "#"))
			h := string(rune('0' + min(6, level+shift)))
			b.WriteString("<h" + h + " class=\"md\">" + inline(strings.TrimSpace(trimmed[level:])) + "</h" + h + ">\n")
		case strings.HasPrefix(trimmed, "|"):
			flush()
			b.WriteString("<table class=\"md\">\n")
			head := i+1 < len(lines) && isRule(strings.TrimSpace(lines[i+1]))
			if head {
				b.WriteString("<thead><tr>")
				for _, c := range cells(trimmed) {
					b.WriteString("<th scope=\"col\">" + inline(c) + "</th>")
				}
				b.WriteString("</tr></thead>\n")
				i += 2
			}
			b.WriteString("<tbody>\n")
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				b.WriteString("<tr>")
				for _, c := range cells(lines[i]) {
					b.WriteString("<td>" + inline(c) + "</td>")
				}
				b.WriteString("</tr>\n")
			}
			i--
			b.WriteString("</tbody></table>\n")
		case strings.HasPrefix(trimmed, "- ") || strings.HasPrefix(trimmed, "* "):
			flush()
			// Items, each with the items indented under it.
			type item struct {
				text string
				subs []string
			}
			var items []item
			for ; i < len(lines); i++ {
				t := strings.TrimSpace(lines[i])
				if !strings.HasPrefix(t, "- ") && !strings.HasPrefix(t, "* ") {
					break
				}
				if strings.HasPrefix(lines[i], " ") && len(items) > 0 {
					items[len(items)-1].subs = append(items[len(items)-1].subs, t[2:])
				} else {
					items = append(items, item{text: t[2:]})
				}
			}
			i--
			b.WriteString("<ul>\n")
			for _, it := range items {
				b.WriteString("<li>" + inline(it.text))
				if len(it.subs) > 0 {
					b.WriteString("<ul>")
					for _, sub := range it.subs {
						b.WriteString("<li>" + inline(sub) + "</li>")
					}
					b.WriteString("</ul>")
				}
				b.WriteString("</li>\n")
			}
			b.WriteString("</ul>\n")
		default:
			para = append(para, trimmed)
		}
	}
	flush()
	return template.HTML(b.String())
}
