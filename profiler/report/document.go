package report

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"
)

// A document is the report as blocks, rendered to Markdown or HTML by the
// same builder so both formats say the same thing. Text in blocks uses a
// small inline markup: **bold**, *italic*, `code` and backslash escapes (see esc).
type document struct {
	title  string
	blocks []block
}

type block interface{ isBlock() }

type heading struct {
	level int
	text  string
}

type paragraph struct{ text string }

type list struct{ items []string }

type table struct {
	head  []string
	right []bool // right-align column
	rows  [][]string
}

type figure struct{ chart *Chart }

func (heading) isBlock()   {}
func (paragraph) isBlock() {}
func (list) isBlock()      {}
func (table) isBlock()     {}
func (figure) isBlock()    {}

func (d *document) h(level int, text string) { d.blocks = append(d.blocks, heading{level, text}) }
func (d *document) p(format string, a ...any) {
	d.blocks = append(d.blocks, paragraph{fmt.Sprintf(format, a...)})
}
func (d *document) list(items []string) {
	if len(items) > 0 {
		d.blocks = append(d.blocks, list{items})
	}
}
func (d *document) table(t table) { d.blocks = append(d.blocks, t) }
func (d *document) fig(c *Chart)  { d.blocks = append(d.blocks, figure{c}) }

// dropEmptyColumns removes the columns named in optional whose cells are all
// empty or a dash.
func (t table) dropEmptyColumns(optional ...string) table {
	opt := map[string]bool{}
	for _, o := range optional {
		opt[o] = true
	}
	var keep []int
	for c, h := range t.head {
		if !opt[h] {
			keep = append(keep, c)
			continue
		}
		for _, r := range t.rows {
			if c < len(r) && r[c] != "" && r[c] != dash {
				keep = append(keep, c)
				break
			}
		}
	}
	out := table{}
	for _, c := range keep {
		out.head = append(out.head, t.head[c])
		out.right = append(out.right, c < len(t.right) && t.right[c])
	}
	for _, r := range t.rows {
		nr := make([]string, 0, len(keep))
		for _, c := range keep {
			if c < len(r) {
				nr = append(nr, r[c])
			} else {
				nr = append(nr, "")
			}
		}
		out.rows = append(out.rows, nr)
	}
	return out
}

// markdown renders the document as GitHub-flavoured Markdown.
func (d *document) markdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n", esc(d.title))
	for _, bl := range d.blocks {
		b.WriteByte('\n')
		switch x := bl.(type) {
		case heading:
			fmt.Fprintf(&b, "%s %s\n", strings.Repeat("#", x.level), x.text)
		case paragraph:
			b.WriteString(x.text + "\n")
		case list:
			for _, it := range x.items {
				b.WriteString("- " + it + "\n")
			}
		case table:
			b.WriteString("| " + strings.Join(x.head, " | ") + " |\n|")
			for c := range x.head {
				if c < len(x.right) && x.right[c] {
					b.WriteString("---:|")
				} else {
					b.WriteString("---|")
				}
			}
			b.WriteByte('\n')
			for _, r := range x.rows {
				b.WriteString("| " + strings.Join(r, " | ") + " |\n")
			}
		case figure:
			c := x.chart
			fmt.Fprintf(&b, "![%s](%s)\n\n%s · [SVG](%s)\n", esc(c.Title), c.PNGName(), c.Caption, c.SVGName())
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// inlineHTML converts the inline markup to HTML, escaping everything else.
func inlineHTML(s string) string {
	var b strings.Builder
	strong, em, code := false, false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s) && !code && strings.IndexByte("\\*`|<>[]", s[i+1]) >= 0:
			i++
			b.WriteString(html.EscapeString(s[i : i+1]))
		case ch == '\\' && code && i+1 < len(s) && s[i+1] == '|':
			i++
			b.WriteByte('|')
		case ch == '*' && !code && i+1 < len(s) && s[i+1] == '*':
			i++
			if strong {
				b.WriteString("</strong>")
			} else {
				b.WriteString("<strong>")
			}
			strong = !strong
		case ch == '*' && !code:
			if em {
				b.WriteString("</em>")
			} else {
				b.WriteString("<em>")
			}
			em = !em
		case ch == '`':
			if code {
				b.WriteString("</code>")
			} else {
				b.WriteString("<code>")
			}
			code = !code
		default:
			b.WriteString(html.EscapeString(s[i : i+1]))
		}
	}
	if code {
		b.WriteString("</code>")
	}
	if em {
		b.WriteString("</em>")
	}
	if strong {
		b.WriteString("</strong>")
	}
	return b.String()
}

// anchor makes an id from heading text.
func anchor(s string, used map[string]int) string {
	a := slug(strings.NewReplacer("**", "", "`", "", "\\", "").Replace(s))
	if a == "" {
		a = "section"
	}
	used[a]++
	if n := used[a]; n > 1 {
		a = fmt.Sprintf("%s-%d", a, n)
	}
	return a
}

const htmlStyle = `body{font-family:-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#1b1f23;line-height:1.45}
h1,h2,h3,h4{line-height:1.2}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:1em 0;font-size:.88em;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.25em .55em;white-space:nowrap}th{background:#f6f8fa}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fbfcfd}
code{background:#f3f4f6;padding:.05em .3em;border-radius:3px}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#57606a;font-size:.9em}`

// html renders the document as one self-contained HTML page with the
// charts' SVGs inlined.
func (d *document) html(w io.Writer) error {
	var b bytes.Buffer
	title := html.EscapeString(d.title)
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>\n%s\n</style>\n</head>\n<body>\n<h1>%s</h1>\n", title, htmlStyle, title)
	used := map[string]int{}
	for _, bl := range d.blocks {
		switch x := bl.(type) {
		case heading:
			fmt.Fprintf(&b, "<h%d id=\"%s\">%s</h%d>\n", x.level, anchor(x.text, used), inlineHTML(x.text), x.level)
		case paragraph:
			fmt.Fprintf(&b, "<p>%s</p>\n", inlineHTML(x.text))
		case list:
			b.WriteString("<ul>\n")
			for _, it := range x.items {
				fmt.Fprintf(&b, "<li>%s</li>\n", inlineHTML(it))
			}
			b.WriteString("</ul>\n")
		case table:
			b.WriteString("<table>\n<thead><tr>")
			for c, h := range x.head {
				fmt.Fprintf(&b, "<th%s>%s</th>", rightClass(x.right, c), inlineHTML(h))
			}
			b.WriteString("</tr></thead>\n<tbody>\n")
			for _, r := range x.rows {
				b.WriteString("<tr>")
				for c, cell := range r {
					fmt.Fprintf(&b, "<td%s>%s</td>", rightClass(x.right, c), inlineHTML(cell))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</tbody>\n</table>\n")
		case figure:
			c := x.chart
			fmt.Fprintf(&b, "<figure id=\"%s\">\n%s\n<figcaption>%s</figcaption>\n</figure>\n", html.EscapeString(c.Name), inlineSVG(c.SVG), inlineHTML(c.Caption))
		}
	}
	b.WriteString("</body>\n</html>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func rightClass(right []bool, c int) string {
	if c < len(right) && right[c] {
		return ` class="r"`
	}
	return ""
}

// inlineSVG strips the XML declaration and leading comments from an SVG
// file so it can sit inside HTML.
func inlineSVG(svg []byte) string {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return strings.TrimSpace(s)
}
