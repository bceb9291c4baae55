package privacy

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/veil-privacy/veil/dataset"
	"golang.org/x/sync/errgroup"
)

// PII kinds the guard detects.
const (
	PIIEmail = "email address"
	PIIPhone = "phone number"
	PIIIPv4  = "IPv4 address"
	PIIIPv6  = "IPv6 address"
	PIICard  = "payment card number"
)

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	ipv4RE  = regexp.MustCompile(`(?:^|[^0-9.])((?:\d{1,3}\.){3}\d{1,3})(?:$|[^0-9.])`)
	ipv6RE  = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}`)
	cardRE  = regexp.MustCompile(`(?:^|[^0-9])(\d(?:[ -]?\d){12,18})(?:$|[^0-9])`)
	// International (+ or 00 and a country code) or national (leading 0)
	// numbers; dates and plain ids do not start that way.
	phoneRE = regexp.MustCompile(`(?:^|[^0-9A-Za-z])((?:\+|00)[1-9][0-9 ().-]{6,18}[0-9]|\(?0[1-9][0-9]{1,3}\)?[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4})(?:$|[^0-9])`)
)

// DetectPII returns the kind of direct identifier s holds and the matching
// text, if any.
func DetectPII(s string) (kind, match string, ok bool) {
	s = bounded(s)
	h := hintsOf(s)
	digits, dots, colons, at, plus := h.digits, h.dots, h.colons, h.at, h.plus
	if at {
		if m := emailRE.FindString(s); m != "" {
			return PIIEmail, m, true
		}
	}
	if digits >= 13 {
		if kind, m, ok := detectCard(s); ok {
			return kind, m, true
		}
	}
	if dots >= 3 && digits >= 4 {
		for _, m := range ipv4RE.FindAllStringSubmatch(s, -1) {
			if a, err := netip.ParseAddr(m[1]); err == nil && a.Is4() {
				return PIIIPv4, m[1], true
			}
		}
	}
	if colons >= 2 {
		for _, m := range ipv6RE.FindAllString(s, -1) {
			if strings.Count(m, ":") < 2 {
				continue
			}
			if a, err := netip.ParseAddr(m); err == nil && a.Is6() {
				return PIIIPv6, m, true
			}
		}
	}
	if digits >= 9 && (plus || strings.Contains(s, "0")) {
		for _, m := range phoneRE.FindAllStringSubmatch(s, -1) {
			n := 0
			for _, c := range m[1] {
				if c >= '0' && c <= '9' {
					n++
				}
			}
			if n >= 9 && n <= 15 {
				return PIIPhone, m[1], true
			}
		}
	}
	return "", "", false
}

// bounded cuts a value to the part DetectPII looks at: identifiers are
// short; bound the work on long texts.
func bounded(s string) string {
	if len(s) > 4096 {
		return s[:4096]
	}
	return s
}

// piiHints are what one pass over a value's bytes says about it: which of
// DetectPII's patterns can match at all, so that the regular expressions
// run only on plausible values.
type piiHints struct {
	digits, dots, colons int
	at, plus             bool
}

func hintsOf(s string) piiHints {
	n := countClasses(s)
	h := piiHints{digits: int(n & 0xffff), dots: int(n >> 16 & 0xffff), colons: int(n >> 32 & 0xffff)}
	if n>>48 != 0 { // rare: only then look for which special byte it was
		h.at = strings.IndexByte(s, '@') >= 0
		h.plus = strings.IndexByte(s, '+') >= 0 || strings.IndexByte(s, '(') >= 0
	}
	return h
}

// countClasses counts the digits, '.', ':' and '@', '+' or '(' of s (at
// most 4096 bytes, so that no count overflows its 16 bits) in the four
// 16-bit fields of one word: one table load and one add per byte, with no
// store in the loop (a counter array made each byte wait on the last).
func countClasses(s string) uint64 {
	var a, b uint64 // two sums, so that adds of neighbouring bytes overlap
	i := 0
	for ; i+1 < len(s); i += 2 {
		a += classCount[s[i]]
		b += classCount[s[i+1]]
	}
	if i < len(s) {
		a += classCount[s[i]]
	}
	return a + b
}

// classCount is what one byte adds to countClasses' word: 1 in the field
// of its class (bits 0-15 digits, 16-31 '.', 32-47 ':', 48-63 '@', '+' or
// '(').
var classCount = func() (t [256]uint64) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['.'], t[':'] = 1<<16, 1<<32
	t['@'], t['+'], t['('] = 1<<48, 1<<48, 1<<48
	return t
}()

// mayHoldPII reports whether DetectPII would run any pattern on s and
// could find something: when it is false, DetectPII(s) finds nothing,
// without a regular expression.
//
// Beyond DetectPII's own first pass, it asks of the card and phone
// patterns what their matches are made of: only digits and " ().+-",
// with at least 13 digits (a card) or 9 (a phone number). So a value
// with no run of those bytes holding 9 digits cannot match either, however
// many digits it holds in all: pseudonymous tokens and ids, most of what
// the guard reads, are ruled out here instead of by a regular expression.
func mayHoldPII(s string) bool {
	s = bounded(s)
	h := hintsOf(s)
	if h.at || h.colons >= 2 || (h.dots >= 3 && h.digits >= 4) {
		return true
	}
	if h.digits < 9 {
		return false
	}
	run := digitRun(s)
	return run >= 13 || (run >= 9 && (h.plus || strings.Contains(s, "0")))
}

// digitRun returns the most digits in one run of s made only of digits and
// the bytes " ().+-", the separators the card and phone patterns allow.
func digitRun(s string) int {
	most, n := 0, 0
	for i := range len(s) {
		// Without branches: a digit adds 1, a separator 0, any other
		// byte ends the run (its mask is 0).
		c := runClass[s[i]]
		n = (n + int(c&1)) & -int(c>>1)
		most = max(most, n)
	}
	return most
}

// runClass sorts bytes for digitRun: bit 1 is set for the bytes a run may
// hold, bit 0 for digits.
var runClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 3
	}
	for _, c := range " ().+-" {
		t[c] = 2
	}
	return t
}()

func detectCard(s string) (string, string, bool) {
	for _, m := range cardRE.FindAllStringSubmatch(s, -1) {
		digits := strings.NewReplacer(" ", "", "-", "").Replace(m[1])
		if len(digits) >= 13 && len(digits) <= 19 && luhn(digits) && strings.Trim(digits, digits[:1]) != "" {
			return PIICard, m[1], true
		}
	}
	return "", "", false
}

// luhn reports whether a digit string passes the Luhn check.
func luhn(d string) bool {
	sum := 0
	for i := range len(d) {
		x := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return sum%10 == 0
}

// Redact keeps the shape of an identifier and little of its content.
func Redact(kind, s string) string {
	mask := func(x string, keepStart, keepEnd int) string {
		if len(x) <= keepStart+keepEnd {
			return strings.Repeat("*", len(x))
		}
		return x[:keepStart] + strings.Repeat("*", len(x)-keepStart-keepEnd) + x[len(x)-keepEnd:]
	}
	switch kind {
	case PIIEmail:
		local, domain, _ := strings.Cut(s, "@")
		host, tld := domain, ""
		if i := strings.LastIndexByte(domain, '.'); i >= 0 {
			host, tld = domain[:i], domain[i:]
		}
		return mask(local, 1, 0) + "@" + mask(host, 1, 0) + tld
	case PIICard:
		return mask(s, 0, 4)
	case PIIIPv4:
		parts := strings.Split(s, ".")
		return parts[0] + ".*.*.*"
	case PIIIPv6:
		return mask(s, 4, 0)
	}
	return mask(s, 3, 2)
}

// PIIFinding is a column found to hold identifiers.
type PIIFinding struct {
	File    string `json:"file"`
	Column  string `json:"column"`
	Kind    string `json:"kind"`
	Example string `json:"example"` // redacted
	Where   string `json:"where"`   // "row group N" or "statistics of row group N"
}

// PIIError refuses input that holds identifiers.
type PIIError struct{ Findings []PIIFinding }

func (e *PIIError) Error() string {
	f := e.Findings[0]
	more := ""
	if n := len(e.Findings) - 1; n > 0 {
		more = fmt.Sprintf(" (and %d more columns)", n)
	}
	return fmt.Sprintf("%s: column %q: %v: %s such as %s in %s%s; refusing to read it (exempt the column in the policy's pii.allow_columns if this is expected)",
		f.File, f.Column, ErrPII, f.Kind, f.Example, f.Where, more)
}

// Unwrap makes errors.Is(err, ErrPII) true.
func (e *PIIError) Unwrap() error { return ErrPII }

// PIIReport says what the guard read.
type PIIReport struct {
	Files       int          `json:"files"`
	Columns     int          `json:"string_columns"`
	RowsScanned int64        `json:"rows_scanned"`
	RowsTotal   int64        `json:"rows_total"`
	ValuesRead  int64        `json:"distinct_values_checked"`
	Findings    []PIIFinding `json:"findings"`
}

// ScanPII scans the string columns of the Parquet files keys in s (except
// the policy's allowed columns): every distinct value of every row group of
// files up to pii.sample_rows rows, row groups spread over the file up to
// that many rows for larger ones, and the min/max statistics of every row
// group. It returns a *PIIError naming the first file, column and a redacted
// example when anything is found.
func ScanPII(ctx context.Context, s dataset.Store, keys []string, pol *Policy) (*PIIReport, error) {
	return scanPII(ctx, s, keys, pol, nil, nil)
}

// scanPII is ScanPII, except that the values of the columns in own are
// not read (their statistics are) and, when picks is not nil, picks[i]
// records which row groups of keys[i] had their values read.
func scanPII(ctx context.Context, s dataset.Store, keys []string, pol *Policy, own map[string]bool, picks [][]bool) (*PIIReport, error) {
	rep := &PIIReport{Findings: []PIIFinding{}}
	sample := int64(pol.PII.SampleRows)
	if sample == 0 {
		sample = 20000
	}
	// Files are scanned on all cores; each file reports on its own and
	// the reports are added in the order of keys. Values found clean in
	// one file's dictionaries are not matched again in the next file of
	// the same worker: the files of a table share most of their values
	// (subject tokens, item ids, categories).
	reps := make([]PIIReport, len(keys))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(keys)))
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range workers {
		g.Go(func() error {
			clean := map[string]struct{}{}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return nil
				}
				var picked *[]bool
				if picks != nil {
					picked = &picks[i]
				}
				if err := scanFile(gctx, s, keys[i], pol, sample, &reps[i], clean, own, picked); err != nil {
					return err
				}
			}
		})
	}
	err := g.Wait()
	for _, r := range reps {
		rep.Files += r.Files
		rep.Columns += r.Columns
		rep.RowsScanned += r.RowsScanned
		rep.RowsTotal += r.RowsTotal
		rep.ValuesRead += r.ValuesRead
		rep.Findings = append(rep.Findings, r.Findings...)
	}
	if err != nil {
		return rep, err
	}
	if len(rep.Findings) > 0 {
		return rep, &PIIError{Findings: rep.Findings}
	}
	return rep, nil
}

func scanFile(ctx context.Context, s dataset.Store, key string, pol *Policy, sample int64, rep *PIIReport, clean map[string]struct{}, own map[string]bool, picked *[]bool) error {
	name := s.Location() + "/" + key
	// A contract of every string leaf column, so that the columnar reader
	// decodes them (and only them).
	probe, err := dataset.OpenParquet(ctx, s, key, &dataset.Contract{Name: "any"})
	if err != nil {
		return err
	}
	defer probe.Close()
	c := &dataset.Contract{Name: "strings"}
	leafIndex := map[string]int{}
	for i, path := range probe.File().Schema().Columns() {
		leaf, _ := probe.File().Schema().Lookup(path...)
		t := leaf.Node.Type()
		if len(path) != 1 || t.Kind() != parquet.ByteArray || leaf.MaxRepetitionLevel > 0 {
			continue
		}
		if lt := t.LogicalType(); lt != nil {
			switch lt.Value.(type) {
			case *format.StringType, *format.EnumType, *format.JsonType:
			default:
				continue
			}
		}
		if slices.Contains(pol.PII.AllowColumns, path[0]) {
			continue
		}
		c.Columns = append(c.Columns, dataset.Column{Name: path[0], Kind: dataset.KindString, Nullable: true})
		leafIndex[path[0]] = i
	}
	rep.Files++
	rep.Columns += len(c.Columns)
	rep.RowsTotal += probe.NumRows()
	if len(c.Columns) == 0 {
		if picked != nil { // no values of this file are read
			*picked = make([]bool, len(probe.File().RowGroups()))
		}
		return nil
	}
	found := map[string]bool{}
	add := func(col, kind, match, where string) {
		if !found[col] {
			found[col] = true
			rep.Findings = append(rep.Findings, PIIFinding{File: name, Column: col, Kind: kind, Example: Redact(kind, match), Where: where})
		}
	}
	groups := probe.File().RowGroups()
	// Statistics of every row group: the smallest and largest values.
	for g, rg := range groups {
		for _, col := range c.Columns {
			chunk, ok := rg.ColumnChunks()[leafIndex[col.Name]].(*parquet.FileColumnChunk)
			if !ok {
				continue
			}
			if lo, hi, ok := chunk.Bounds(); ok {
				for _, v := range []parquet.Value{lo, hi} {
					if kind, m, ok := DetectPII(string(v.ByteArray())); ok {
						add(col.Name, kind, m, fmt.Sprintf("statistics of row group %d", g))
					}
				}
			}
		}
	}
	// Row groups to read: all of a small file, else spread evenly.
	var pick []int
	if probe.NumRows() <= sample {
		for g := range groups {
			pick = append(pick, g)
		}
	} else {
		var rows int64
		step := max(1, len(groups)/max(1, int(sample/max(1, groups[0].NumRows()))))
		for g := 0; g < len(groups) && rows < sample; g += step {
			pick = append(pick, g)
			rows += groups[g].NumRows()
		}
	}
	if picked != nil {
		*picked = make([]bool, len(groups))
		for _, g := range pick {
			(*picked)[g] = true
		}
	}
	if len(own) > 0 {
		// The caller checks these columns' values in its own reads.
		c = &dataset.Contract{Name: c.Name, Columns: slices.DeleteFunc(slices.Clone(c.Columns), func(col dataset.Column) bool { return own[col.Name] })}
		if len(c.Columns) == 0 {
			for _, g := range pick {
				rep.RowsScanned += groups[g].NumRows()
			}
			return nil
		}
	}
	f, err := dataset.OpenParquet(ctx, s, key, c)
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := f.Project()
	if err != nil {
		return err
	}
	var b dataset.Distinct
	for _, g := range pick {
		if err := f.ReadRowGroupDistinct(ctx, g, p, nil, &b); err != nil {
			return err
		}
		rep.RowsScanned += int64(b.Rows)
		for c := range b.Cols {
			col := &b.Cols[c]
			if found[col.Name] {
				continue
			}
			// The dictionary holds every distinct value of the row group.
			for i := range col.Len() {
				v := col.At(i)
				rep.ValuesRead++
				// Most values fail DetectPII's first pass: cheaper to
				// decide again than to look up. The others are remembered.
				// mayHoldPII keeps nothing of its argument, so it may see
				// the bytes of b as a string, without a copy.
				if !mayHoldPII(unsafe.String(unsafe.SliceData(v), len(v))) {
					continue
				}
				if _, ok := clean[string(v)]; ok {
					continue
				}
				s := string(v)
				if kind, m, ok := DetectPII(s); ok {
					add(col.Name, kind, m, fmt.Sprintf("row group %d", g))
					break
				}
				clean[s] = struct{}{}
			}
		}
	}
	return nil
}

// ScanGuard is the PII guard of one scan that decodes some string columns
// anyway (a consent-filtered scan decodes subject_id): it checks what
// ScanPII checks, reading the other columns before the scan as ScanPII
// does, and taking the values of the scan's own columns from the scan's
// batches (Check) instead of reading them a second time. The subject
// tokens are most of what the guard reads, so this halves what the guard
// and the scan read between them.
//
// The verdict is ScanPII's, and so is the error: a ScanGuard only ever
// decides that the files are clean. When the early check or a batch finds
// anything, or the scan fails, Verdict runs ScanPII over every file and
// returns its result. A caller must keep what the scan makes to itself
// until Verdict returns nil: values of the scan's own columns are only
// checked while the scan runs.
type ScanGuard struct {
	store   dataset.Store
	keys    []string
	pol     *Policy
	own     map[string]bool
	picks   [][]bool              // by file and row group: values ScanPII reads
	clean   []map[string]struct{} // by worker: values found clean
	suspect atomic.Bool
}

// GuardScan checks the files of sc as ScanPII does, except the values of
// the columns named in own, which the scan must decode (Check takes them
// from its batches); the policy's allowed columns are left out of own.
// Check may be called from workers goroutines. It returns ScanPII's error
// when anything is found before the scan.
func GuardScan(ctx context.Context, sc *dataset.Scan, pol *Policy, workers int, own ...string) (*ScanGuard, error) {
	g := &ScanGuard{store: sc.Store, keys: sc.Keys, pol: pol, own: map[string]bool{}, picks: make([][]bool, len(sc.Keys)),
		clean: make([]map[string]struct{}, max(1, workers))}
	for _, name := range own {
		if !slices.Contains(pol.PII.AllowColumns, name) {
			g.own[name] = true
		}
	}
	for w := range g.clean {
		g.clean[w] = map[string]struct{}{}
	}
	if _, err := scanPII(ctx, sc.Store, sc.Keys, pol, g.own, g.picks); err != nil {
		// What the columns left out would add: ScanPII's error is the
		// one to report.
		if _, full := ScanPII(ctx, sc.Store, sc.Keys, pol); full != nil {
			return nil, full
		}
		return nil, err
	}
	return g, nil
}

// Check checks the own columns of a batch the scan decoded for unit u,
// when ScanPII would read the values of that row group. worker is the
// caller's index in [0, workers).
func (g *ScanGuard) Check(worker int, u dataset.Unit, b *dataset.Batch) {
	if len(g.own) == 0 || g.suspect.Load() {
		return
	}
	if u.File >= len(g.picks) || u.RowGroup >= len(g.picks[u.File]) {
		g.suspect.Store(true) // the file changed since the guard read its footer
		return
	}
	if !g.picks[u.File][u.RowGroup] {
		return
	}
	clean := g.clean[worker]
	for name := range g.own {
		col := b.Column(name)
		if col == nil || !col.Distinct {
			// The batch may lack values ScanPII reads (a dictionary
			// that no page uses): let ScanPII decide.
			g.suspect.Store(true)
			return
		}
		for _, v := range col.Str.Dict {
			if !mayHoldPII(v) {
				continue
			}
			if _, ok := clean[v]; ok {
				continue
			}
			if _, _, ok := DetectPII(v); ok {
				g.suspect.Store(true)
				return
			}
			clean[v] = struct{}{}
		}
	}
}

// Verdict returns the guard's verdict once the scan is over, given the
// scan's error: nil if the files are clean and the scan succeeded;
// ScanPII's error if it finds anything; else the scan's error.
func (g *ScanGuard) Verdict(ctx context.Context, scanErr error) error {
	if scanErr == nil && !g.suspect.Load() {
		return nil
	}
	if _, err := ScanPII(ctx, g.store, g.keys, g.pol); err != nil {
		return err
	}
	return scanErr
}
