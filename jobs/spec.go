package jobs

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/internal/strictyaml"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

var (
	// ErrSpec is returned for an invalid pipeline spec (exit 2).
	ErrSpec = exitcode.Sentinel(exitcode.Invalid, "invalid pipeline spec")
	// ErrLocked is returned when another run holds the lock (exit 4).
	ErrLocked = exitcode.Sentinel(exitcode.Locked, "another run holds the lock")
)

// Spec is a pipeline (configs/nightly.yaml).
type Spec struct {
	Name    string      `yaml:"name"`
	State   string      `yaml:"state"` // URL where locks, step records and latest pointers live
	Lock    LockSpec    `yaml:"lock"`
	Metrics MetricsSpec `yaml:"metrics"`
	Steps   []StepSpec  `yaml:"steps"`
	Retries RetrySpec   `yaml:"retries"`
	Lineage LineageSpec `yaml:"lineage"`
	// Audit is the URL of the audit log (default: STATE/audit).
	Audit string `yaml:"audit"`
	// Owners of the pipeline, as URNs (team:data, user:jdoe), for the
	// lineage ownership facet; default: the user who runs it.
	Owners []string `yaml:"owners"`
	// Purposes the pipeline declares (analytics, segmentation,
	// personalization, marketing): when set, a step that needs another
	// purpose is a spec error, so a reviewer sees every purpose in one
	// place.
	Purposes []string `yaml:"purposes"`
	// Storage applies to every s3:// URL of the spec: server-side
	// encryption (sse: AES256 or aws:kms, with sse_kms_key_id) and whether
	// plain HTTP may leave the machine (allow_http).
	Storage dataset.S3Defaults `yaml:"storage"`
	// Segregation, when set, runs every step once per zone, on the
	// subjects of that zone's jurisdictions only, into the zone's own
	// outputs (the {zone} placeholder of the step's URLs) with the zone's
	// own storage settings and keys.
	Segregation *Segregation `yaml:"segregation"`
	// Report, when set, makes veil run write the run's static site (veil
	// report) after a successful run. It is not part of the pipeline's
	// identity: adding it does not make a completed date run again.
	Report *ReportSpec `yaml:"report" json:"-"`
}

// ReportSpec is where veil run writes the run's site, and for whom.
type ReportSpec struct {
	// Out is a local folder; a {date} in it is the logical date.
	Out string `yaml:"out"`
	// Audience is steward (default) or marketing.
	Audience string `yaml:"audience"`
}

// Segregation partitions a pipeline's work by jurisdiction: no output of a
// segregated pipeline holds subjects of two zones.
type Segregation struct {
	// By names what partitions subjects; "jurisdiction" (the default, and
	// the only one) is the legal regime named by a subject's latest consent
	// record at or before the logical date.
	By    string `yaml:"by"`
	Zones []Zone `yaml:"zones"`
}

// Zone is one partition of a segregated pipeline.
type Zone struct {
	// Name replaces {zone} in the step URLs (eu, us).
	Name string `yaml:"name"`
	// Jurisdictions whose subjects the zone holds (GDPR, UK-GDPR); zones
	// may not share one. Subjects of no zone's jurisdiction, or of none,
	// are left out of every output.
	Jurisdictions []string `yaml:"jurisdictions"`
	// Storage overrides the spec's storage for the zone's steps: its own
	// SSE-KMS key, its own envelope key id.
	Storage *dataset.S3Defaults `yaml:"storage"`
}

// zonePlaceholder is replaced by the zone's name in a segregated step's
// URLs.
const zonePlaceholder = "{zone}"

var zoneRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// validateSegregation checks the zones and that every step writes per zone.
func (s *Spec) validateSegregation() error {
	g := s.Segregation
	if g == nil {
		for _, st := range s.Steps {
			for _, u := range st.urls() {
				if strings.Contains(u, zonePlaceholder) {
					return fmt.Errorf("%w: step %s uses %s, but the spec has no segregation zones", ErrSpec, st.Name, zonePlaceholder)
				}
			}
		}
		return nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: segregation: %s", ErrSpec, fmt.Sprintf(format, args...))
	}
	if g.By != "" && g.By != "jurisdiction" {
		return bad("by %q: only jurisdiction is supported", g.By)
	}
	if len(g.Zones) == 0 {
		return bad("no zones")
	}
	names, owner := map[string]bool{}, map[string]string{}
	for _, z := range g.Zones {
		if !zoneRE.MatchString(z.Name) {
			return bad("zone name %q must be lower case letters, digits and -", z.Name)
		}
		if names[z.Name] {
			return bad("zone %s is defined twice", z.Name)
		}
		names[z.Name] = true
		if len(z.Jurisdictions) == 0 {
			return bad("zone %s has no jurisdictions", z.Name)
		}
		for _, j := range z.Jurisdictions {
			if j == "" {
				return bad("zone %s: empty jurisdiction", z.Name)
			}
			if o, ok := owner[j]; ok {
				return bad("jurisdiction %s is in zones %s and %s", j, o, z.Name)
			}
			owner[j] = z.Name
		}
		if z.Storage != nil {
			if err := validateStorage(*z.Storage); err != nil {
				return bad("zone %s: storage: %v", z.Name, err)
			}
		}
	}
	for _, st := range s.Steps {
		w := st.work()
		if len(w.jurisdictions()) > 0 {
			return bad("step %s sets its own jurisdictions; the zones set them", st.Name)
		}
		for _, u := range w.zoneOutputs() {
			if !strings.Contains(u, zonePlaceholder) {
				return bad("step %s: %s has no %s, so its zones would share one output", st.Name, u, zonePlaceholder)
			}
		}
	}
	return nil
}

// urls returns the step's URLs that may hold {zone}.
func (st StepSpec) urls() []string {
	var out []string
	for _, w := range st.works() {
		w.urls(func(p *string) { out = append(out, *p) })
	}
	return out
}

// inZone returns the step's copy for a zone: named STEP.ZONE, depending on
// the zone's copies of its dependencies, with {zone} replaced in its URLs
// and its work restricted to the zone's jurisdictions.
func (st StepSpec) inZone(z *Zone) StepSpec {
	out := st
	out.Name = st.Name + "." + z.Name
	out.zone = z
	out.DependsOn = nil
	for _, d := range st.DependsOn {
		out.DependsOn = append(out.DependsOn, d+"."+z.Name)
	}
	for _, w := range st.works() {
		w.inZone(&out, z)
	}
	out.zoned = nil
	for _, w := range out.works() {
		w.urls(func(p *string) {
			if strings.Contains(*p, zonePlaceholder) {
				*p = strings.ReplaceAll(*p, zonePlaceholder, z.Name)
				out.zoned = append(out.zoned, *p)
			}
		})
	}
	return out
}

// Expanded returns the steps a run runs: the spec's steps, or under
// segregation each step once per zone (zone by zone, in spec order).
func (s *Spec) Expanded() []StepSpec {
	if s.Segregation == nil {
		return s.Steps
	}
	var out []StepSpec
	for i := range s.Segregation.Zones {
		for _, st := range s.Steps {
			out = append(out, st.inZone(&s.Segregation.Zones[i]))
		}
	}
	return out
}

// validateStorage checks the server-side encryption settings.
func validateStorage(c dataset.S3Defaults) error {
	if c.SSE == "" && c.SSEKMSKeyID == "" {
		return nil
	}
	probe := s3.DefaultConfig("probe", "")
	probe.SSE, probe.SSEKMSKeyID = c.SSE, c.SSEKMSKeyID
	return probe.Validate()
}

// LineageSpec says where OpenLineage events go. Events are always written
// as JSON lines under Store; HTTP and Console add transports.
type LineageSpec struct {
	Store   string `yaml:"store"`       // default: STATE/lineage
	HTTP    string `yaml:"http"`        // Marquez-compatible base URL; events POST to /api/v1/lineage
	APIKey  string `yaml:"api_key_env"` // environment variable holding the API key (never the key itself)
	Spool   string `yaml:"spool"`       // where undelivered HTTP events wait (default: STATE/lineage-spool)
	Console bool   `yaml:"console"`     // also print events to stderr
}

// LockSpec sets the lease of the run lock.
type LockSpec struct {
	TTL time.Duration `yaml:"ttl"` // a holder that does not renew within this loses the lock (default 10m)
}

// RetrySpec retries a failed step (runtime failures only, never refusals).
type RetrySpec struct {
	Attempts int           `yaml:"attempts"` // per step, including the first (default 1)
	Backoff  time.Duration `yaml:"backoff"`  // before the second attempt, doubling (default 10s)
}

// MetricsSpec says where Prometheus metrics go after a run.
type MetricsSpec struct {
	Textfile    string `yaml:"textfile"`    // node_exporter textfile collector path (*.prom)
	Pushgateway string `yaml:"pushgateway"` // Pushgateway URL
}

// StepSpec is one step. Exactly one kind of work is set.
type StepSpec struct {
	Name         string            `yaml:"name"`
	DependsOn    []string          `yaml:"depends_on"`
	Pseudonymize *PseudonymizeStep `yaml:"pseudonymize"`
	Segment      *segment.Config   `yaml:"segment"`
	Train        *train.JobConfig  `yaml:"train"`
	// zone is the segregation zone of an expanded step (Spec.Expanded),
	// and zoned its URLs that named the zone: those get its storage.
	zone  *Zone
	zoned []string
}

// Zone returns the segregation zone the step runs in, or nil.
func (st StepSpec) Zone() *Zone { return st.zone }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// LoadSpec reads and validates a spec file; errors name the file and line.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return ParseSpec(path, data)
}

// ParseSpec decodes and validates a spec; file names it in errors.
func ParseSpec(path string, data []byte) (*Spec, error) {
	var s Spec
	if err := strictyaml.Decode(path, data, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func (s *Spec) defaults() {
	if s.Lock.TTL == 0 {
		s.Lock.TTL = 10 * time.Minute
	}
	if s.Retries.Attempts == 0 {
		s.Retries.Attempts = 1
	}
	if s.Retries.Backoff == 0 {
		s.Retries.Backoff = 10 * time.Second
	}
	// A step's segment config gets segment.DefaultConfig for what it
	// leaves out (segment.Config.UnmarshalYAML).
}

// Validate checks names, kinds, dependencies (known, acyclic) and every
// step's own configuration.
func (s *Spec) Validate() error {
	if r := s.Report; r != nil {
		if r.Out == "" {
			return fmt.Errorf("%w: report.out is required", ErrSpec)
		}
		if r.Audience != "" && r.Audience != "steward" && r.Audience != "marketing" {
			return fmt.Errorf("%w: report.audience %q: want steward or marketing", ErrSpec, r.Audience)
		}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(s.Name) {
		return bad("name %q must be lower case letters, digits, - and _", s.Name)
	}
	if s.State == "" {
		return bad("state (where locks and pointers live) is required")
	}
	if s.Lock.TTL < time.Second {
		return bad("lock.ttl %v is too short", s.Lock.TTL)
	}
	if s.Retries.Attempts < 1 || s.Retries.Attempts > 10 {
		return bad("retries.attempts %d must be in [1, 10]", s.Retries.Attempts)
	}
	if len(s.Steps) == 0 {
		return bad("no steps")
	}
	seen := map[string]bool{}
	for _, st := range s.Steps {
		if !nameRE.MatchString(st.Name) {
			return bad("step name %q must be lower case letters, digits, - and _", st.Name)
		}
		if seen[st.Name] {
			return bad("step %q is defined twice", st.Name)
		}
		seen[st.Name] = true
		switch n := len(st.works()); {
		case n == 0:
			return bad("step %s has no work (pseudonymize, segment or train)", st.Name)
		case n > 1:
			return bad("step %s has more than one kind of work: pseudonymize, segment and train are separate steps", st.Name)
		}
		if err := st.work().validate(); err != nil {
			return fmt.Errorf("%w: step %s: %w", ErrSpec, st.Name, err)
		}
	}
	if err := validateStorage(s.Storage); err != nil {
		return bad("storage: %v", err)
	}
	if err := s.validateSegregation(); err != nil {
		return err
	}
	for _, p := range s.Purposes {
		if !slices.Contains(privacy.KnownPurposes, p) {
			return bad("purpose %q is not one of %v", p, privacy.KnownPurposes)
		}
	}
	for _, st := range s.Steps {
		for _, p := range st.work().purposes() {
			if len(s.Purposes) > 0 && !slices.Contains(s.Purposes, p) {
				return bad("step %s needs purpose %s, which the spec does not declare in purposes %v", st.Name, p, s.Purposes)
			}
		}
		for _, d := range st.DependsOn {
			if !seen[d] {
				return bad("step %s depends on %q, which is not a step", st.Name, d)
			}
		}
	}
	if _, err := s.Order(); err != nil {
		return err
	}
	return nil
}

// Order returns the steps a run runs (Expanded) in dependency order (spec
// order among equals).
func (s *Spec) Order() ([]StepSpec, error) {
	steps := s.Expanded()
	done := map[string]bool{}
	var out []StepSpec
	for len(out) < len(steps) {
		progress := false
		for _, st := range steps {
			if done[st.Name] {
				continue
			}
			ready := true
			for _, d := range st.DependsOn {
				ready = ready && done[d]
			}
			if ready {
				done[st.Name] = true
				out = append(out, st)
				progress = true
			}
		}
		if !progress {
			var left []string
			for _, st := range steps {
				if !done[st.Name] {
					left = append(left, st.Name)
				}
			}
			slices.Sort(left)
			return nil, fmt.Errorf("%w: the dependencies of steps %v form a cycle", ErrSpec, left)
		}
	}
	return out, nil
}

// Access is a location a pipeline reads or writes.
type Access struct {
	URL   string
	Write bool
	What  string
	// Steward marks the location of a step's steward reports (exact
	// counts, diagnostics, the contributors filter): only the scheduler
	// and the data steward may read there (the release census).
	Steward bool
}

// Kind says "read" or "write".
func (a Access) Kind() string {
	if a.Write {
		return "write"
	}
	return "read"
}

// Accesses lists every location the spec reads or writes, for access
// checks: step inputs and outputs, the steps' steward reports, the state,
// lineage records, the audit log and budget ledgers.
func (s *Spec) Accesses() []Access {
	var out []Access
	add := func(a Access) {
		if a.URL != "" {
			out = append(out, a)
		}
	}
	add(Access{URL: s.State, Write: true, What: "run state and locks"})
	add(Access{URL: s.Lineage.Store, Write: true, What: "lineage records"})
	add(Access{URL: s.Audit, Write: true, What: "audit log"})
	for _, st := range s.Expanded() {
		for _, w := range st.works() {
			w.accesses(st.Name, stewardURL(s), add)
		}
	}
	return out
}

// StepPolicies lists the policy files the spec's steps name ("" for the
// built-in policy) with the steps that name each, in step order.
func (s *Spec) StepPolicies() (files []string, steps map[string][]string) {
	steps = map[string][]string{}
	for _, st := range s.Expanded() {
		var file string
		var ok bool
		for _, w := range st.works() {
			file, ok = w.policy()
		}
		if !ok {
			continue
		}
		if _, ok := steps[file]; !ok {
			files = append(files, file)
		}
		steps[file] = append(steps[file], st.Name)
	}
	return files, steps
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// unencryptedWrites lists the s3:// locations the spec writes with neither
// server-side nor envelope encryption asked for (by the spec's storage, a
// zone's, or the URL's sse parameter).
func (s *Spec) unencryptedWrites() []string {
	encrypted := func(st dataset.S3Defaults) bool { return st.SSE != "" || st.Encryption != nil }
	if encrypted(s.Storage) {
		return nil
	}
	zoned := map[string]bool{}
	for _, st := range s.Expanded() {
		if z := st.Zone(); z != nil && z.Storage != nil && encrypted(*z.Storage) {
			for _, u := range st.zoned {
				zoned[u] = true
			}
		}
	}
	var out []string
	for _, a := range s.Accesses() {
		if a.Write && strings.HasPrefix(a.URL, "s3://") && !strings.Contains(a.URL, "sse=") && !zoned[a.URL] && !slices.Contains(out, a.URL) {
			out = append(out, a.URL)
		}
	}
	return out
}
