package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/jobs"
	"github.com/veil-privacy/veil/lineage"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/privacy/release"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

// Options say whom a site is for and how to open its stores.
type Options struct {
	Audience Audience
	URL      dataset.URLOptions
	// SpecPath is the spec's file as the reader would name it, for the
	// commands the privacy page suggests.
	SpecPath string
	// MaxAsset is the largest release file copied into the site (plots,
	// datasheets, CSV exports); larger files are listed, not copied.
	// Zero: 1 MiB.
	MaxAsset int64
	// Role is the reader's role: a marketing build shows a release file
	// only when the role may read its key, relative to Root (the store's
	// root, as the policy's roles name keys). Nil: the policy's
	// "marketing" role, from the first step's policy file (the built-in
	// roles without one), with Root the folder that holds the policy file,
	// or without one the folder that holds the pipeline's state.
	Role *privacy.Role
	Root string
}

// Collect gathers the site of the run that completed (spec, day). A
// marketing site is built from releases and the steps' public reports
// only (segment.Report.Public, train.Report.Public): it never reads a
// steward report, the ledger or the audit log.
func Collect(ctx context.Context, spec *jobs.Spec, day time.Time, opt Options) (*Site, error) {
	if _, err := ParseAudience(string(opt.Audience)); err != nil {
		return nil, err
	}
	if opt.MaxAsset == 0 {
		opt.MaxAsset = 1 << 20
	}
	done, err := jobs.ReadCompleted(ctx, spec, day, opt.URL)
	if err != nil {
		if errors.Is(err, jobs.ErrNotCompleted) {
			return nil, fmt.Errorf("%w: %w", ErrNotCompleted, err)
		}
		return nil, err
	}
	steward := opt.Audience == Steward
	if !steward && opt.Role == nil {
		if opt.Role, opt.Root, err = marketingRole(spec); err != nil {
			return nil, err
		}
	}
	s := &Site{Audience: opt.Audience, Pipeline: spec.Name, LogicalDate: done.LogicalDate, RunID: done.RunID,
		Completed: done.CompletedAt.UTC().Format(time.RFC3339), Owners: spec.Owners, Assets: map[string][]byte{}}
	order, err := spec.Order()
	if err != nil {
		return nil, err
	}
	specs := map[string]jobs.StepSpec{}
	for _, st := range order {
		specs[st.Name] = st
	}
	for _, sr := range done.Steps {
		st := specs[sr.Step]
		step := Step{Name: sr.Step, RunID: sr.RunID, Status: "completed", Seconds: sr.Seconds, Outputs: []string{sr.Output}}
		switch {
		case sr.Segment != nil && st.Segment != nil:
			rep := sr.Segment
			step.Kind = "segment"
			step.Inputs = nonEmpty(st.Segment.Events, st.Segment.Catalog)
			step.Privacy = segmentPrivacy(rep)
			if steward && rep.StewardReport != "" {
				step.Outputs = append(step.Outputs, rep.StewardReport+" (steward report)")
			}
			c, err := cohorts(ctx, s, sr.Step, rep, steward, opt)
			if err != nil {
				return nil, err
			}
			s.Cohorts = append(s.Cohorts, c)
		case sr.Train != nil && st.Train != nil:
			rep := sr.Train
			step.Kind = "train"
			step.Inputs = nonEmpty(st.Train.Events, st.Train.Catalog)
			step.Privacy = trainPrivacy(rep)
			if steward && rep.Steward != "" {
				step.Outputs = append(step.Outputs, rep.Steward+" (steward report)")
			}
			m, err := model(ctx, sr.Step, rep, steward, opt)
			if errors.Is(err, errHidden) {
				break // the marketing role reads no model card
			} else if err != nil {
				return nil, err
			}
			s.Models = append(s.Models, m)
		case sr.Pseudonymize != nil && st.Pseudonymize != nil:
			step.Kind = "pseudonymize"
			step.Inputs = []string{st.Pseudonymize.In}
			step.Privacy = "not a DP release: pseudonymization"
		}
		s.Steps = append(s.Steps, step)
	}
	lineageURL := spec.Lineage.Store
	if lineageURL == "" {
		lineageURL = dataset.ChildURL(spec.State, "lineage")
	}
	if s.Graph, err = graph(ctx, lineageURL, done, steward, opt); err != nil {
		return nil, err
	}
	if steward {
		if s.Privacy, err = privacyPage(ctx, spec, done, order, day, lineageURL, opt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func segmentPrivacy(rep *segment.Report) string {
	if rep.NotDP != "" {
		return rep.NotDP
	}
	if rep.DP != nil {
		return "DP k-means and noisy cohort sizes, charged to the privacy budget"
	}
	return ""
}

func trainPrivacy(rep *train.Report) string {
	g := rep.Guarantee
	if g == nil {
		return "not differentially private"
	}
	return fmt.Sprintf("item factors (ε %s, δ %s)-DP per %s (%s)", num(g.Epsilon), num(g.Delta), g.Unit, g.Accountant)
}

// graph is the lineage of the run's steps. A marketing build leaves out
// every steward location.
func graph(ctx context.Context, url string, done *jobs.Completed, steward bool, opt Options) (Graph, error) {
	store, err := open.Store(ctx, url, opt.URL)
	if err != nil {
		return Graph{}, err
	}
	events, err := lineage.ReadEvents(ctx, store, "")
	if err != nil {
		return Graph{}, fmt.Errorf("reading the lineage of run %s: %w", done.RunID, err)
	}
	lg := lineage.BuildGraph(events)
	var g Graph
	seen := map[string]bool{}
	add := func(n Node) {
		if !seen[n.ID] {
			seen[n.ID] = true
			g.Nodes = append(g.Nodes, n)
		}
	}
	datasetNode := func(d lineage.Dataset) (Node, bool) {
		key := d.Key()
		if !steward && (strings.Contains(key, "/steward/") || strings.Contains(key, "/_steward/")) {
			return Node{}, false
		}
		return Node{ID: key, Label: strings.TrimPrefix(d.Name, "/"), Kind: "dataset"}, true
	}
	for _, sr := range done.Steps {
		r := lg.Runs[sr.RunID]
		if r == nil {
			continue
		}
		run := Node{ID: "run " + sr.Step, Label: sr.Step + " (" + r.Job + ")", Kind: "run"}
		for _, d := range r.Inputs {
			if n, ok := datasetNode(d); ok {
				add(n)
				g.Edges = append(g.Edges, Edge{From: n.ID, To: run.ID})
			}
		}
		add(run)
		for _, d := range r.Outputs {
			if n, ok := datasetNode(d); ok {
				add(n)
				g.Edges = append(g.Edges, Edge{From: run.ID, To: n.ID})
			}
		}
	}
	return g, nil
}

// releaseFiles lists a release's files that anyone who may read the
// release may read (class release), copying the small ones into the site
// under files/STEP/.
func releaseFiles(ctx context.Context, s *Site, step, output string, opt Options) (files []File, plots []Plot, datasheet string, err error) {
	ref, err := open.Ref(ctx, output, opt.URL)
	if err != nil {
		return nil, nil, "", err
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", output, err)
	}
	for _, f := range m.Files {
		class := f.Class
		if class == "" {
			class = m.Class
		}
		if class != dataset.ClassRelease || !opt.allows(fileURL(output, f.Key)) {
			continue
		}
		name := strings.Replace(f.Key, "-"+m.WriteID, "", 1)
		file := File{Name: name, Size: f.Size, Class: class}
		ext := path.Ext(name)
		if f.Size <= opt.MaxAsset && slices.Contains([]string{".png", ".md", ".csv", ".json"}, ext) {
			data, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
			if err != nil {
				return nil, nil, "", err
			}
			file.Href = "files/" + step + "/" + name
			s.Assets[file.Href] = data
			switch {
			case ext == ".png":
				plots = append(plots, Plot{Href: file.Href, Alt: plotAlt(step, name)})
			case name == "datasheet.md":
				datasheet = string(data)
			}
		}
		files = append(files, file)
	}
	return files, plots, datasheet, nil
}

func plotAlt(step, name string) string {
	what := strings.ReplaceAll(strings.TrimSuffix(name, ".png"), "_", " ")
	return fmt.Sprintf("Plot of the release of step %s: %s (the tables on this page give its figures)", step, what)
}

func cohorts(ctx context.Context, s *Site, step string, rep *segment.Report, steward bool, opt Options) (Cohorts, error) {
	shown := rep.Public()
	c := Cohorts{Step: step, RunID: rep.RunID, Output: rep.Output, Privacy: segmentPrivacy(rep)}
	if steward && rep.Private() {
		shown, c.Exact = rep, true
	}
	for _, p := range shown.Profiles {
		pr := Profile{ID: p.CohortID, NoisySize: p.NoisySize, Size: p.Size, Explanation: p.Explanation, Note: p.Note}
		for _, f := range p.Top {
			pr.Features = append(pr.Features, Feature{Description: f.Description, Z: f.Z, Value: f.Value, Population: f.Population})
		}
		c.Profiles = append(c.Profiles, pr)
	}
	var err error
	c.Files, c.Plots, c.Datasheet, err = releaseFiles(ctx, s, step, rep.Output, opt)
	return c, err
}

func model(ctx context.Context, step string, rep *train.Report, steward bool, opt Options) (Model, error) {
	m := Model{Step: step, RunID: rep.RunID, Guarantee: trainPrivacy(rep)}
	card, key, err := readFile(ctx, rep.Output, "model_card.md", opt)
	if err != nil {
		return m, err
	}
	if !steward && !opt.allows(key) {
		return m, errHidden
	}
	m.Card = string(card)
	if !steward {
		return m, nil
	}
	if rep.Steward != "" {
		if a, _, err := readFile(ctx, rep.Steward, "model_card_steward.md", opt); err == nil {
			m.Appendix = string(a)
		}
	}
	e := rep.Eval
	if e.Model.Subjects > 0 {
		m.Eval = append(m.Eval, EvalRow{"this model", e.Model.Recall20, e.Model.NDCG20, e.Model.Coverage},
			EvalRow{"popularity", e.Popularity.Recall20, e.Popularity.NDCG20, e.Popularity.Coverage})
		if np := e.NonPrivate; np != nil {
			m.Eval = append(m.Eval, EvalRow{"non-private", np.Recall20, np.NDCG20, np.Coverage})
		}
	}
	for _, p := range rep.Curve {
		m.Curve = append(m.Curve, CurvePoint{Epsilon: p.Epsilon, Private: !math.IsInf(p.Epsilon, 1), RecallAt: p.Metrics.Recall20, NDCG: p.Metrics.NDCG20})
	}
	if x := rep.Exposure; x != nil {
		m.Exposure = []Fact{
			{"recommendations", fmt.Sprint(x.Recommendations)},
			{"share of the catalog recommended to anyone", fmt.Sprintf("%.3f", x.Coverage)},
			{"Gini coefficient of recommendations over items (0 even, 1 one item)", fmt.Sprintf("%.3f", x.Gini)},
			{"share of recommendations going to the 10% most popular items", fmt.Sprintf("%.3f", x.PopularShare)},
			{"share of interactions with those items", fmt.Sprintf("%.3f", x.PopularInteractionShare)},
		}
	}
	return m, nil
}

// readFile reads a file of a committed output by its logical name and
// returns it with the file's URL.
func readFile(ctx context.Context, output, name string, opt Options) ([]byte, string, error) {
	ref, err := open.Ref(ctx, output, opt.URL)
	if err != nil {
		return nil, "", err
	}
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", output, err)
	}
	f, ok := m.Find(name)
	if !ok {
		return nil, "", fmt.Errorf("%s: no %s", output, name)
	}
	data, err := dataset.ReadAll(ctx, ref.Store, dataset.Join(ref.Key, f.Key))
	return data, fileURL(output, f.Key), err
}

// errHidden says that the reader's role may not read a release.
var errHidden = errors.New("not readable by the role")

// fileURL is the URL of a file of an output.
func fileURL(output, key string) string { return strings.TrimSuffix(output, "/") + "/" + key }

// allows reports whether the reader's role may read the file at url: its
// key is the URL's path below Root. A file outside Root is not readable.
func (o Options) allows(url string) bool {
	if o.Role == nil {
		return true
	}
	key, ok := strings.CutPrefix(localPath(url), strings.TrimSuffix(localPath(o.Root), "/")+"/")
	return ok && o.Role.Allows(key, false)
}

// localPath turns a file:// URL into its path; other URLs stay as they are.
func localPath(u string) string {
	if p, ok := strings.CutPrefix(u, "file://"); ok {
		return p
	}
	if strings.Contains(u, "://") {
		return u
	}
	if abs, err := filepath.Abs(u); err == nil {
		return abs
	}
	return u
}

// marketingRole is the policy's marketing role and the store root its
// keys are relative to.
func marketingRole(spec *jobs.Spec) (*privacy.Role, string, error) {
	file := ""
	for _, st := range spec.Steps {
		switch {
		case st.Segment != nil && st.Segment.Policy != "":
			file = st.Segment.Policy
		case st.Train != nil && st.Train.Policy != "":
			file = st.Train.Policy
		}
		if file != "" {
			break
		}
	}
	roles, root := privacy.DefaultRoles(), path.Dir(strings.TrimSuffix(spec.State, "/"))
	if file != "" {
		pol, err := privacy.LoadPolicy(file)
		if err != nil {
			return nil, "", err
		}
		roles, root = pol.Roles, filepath.Dir(file)
	}
	r, ok := roles["marketing"]
	if !ok {
		return nil, "", fmt.Errorf("the policy %s has no marketing role", file)
	}
	return &r, root, nil
}

// privacyPage reads the ledgers the run charged, the audits of its
// training steps and the audit log.
func privacyPage(ctx context.Context, spec *jobs.Spec, done *jobs.Completed, order []jobs.StepSpec, day time.Time, lineageURL string, opt Options) (*Privacy, error) {
	p := &Privacy{Lineage: lineageURL, Spec: opt.SpecPath}
	if p.Spec == "" {
		p.Spec = "SPEC"
	}
	seen := map[string]bool{}
	for i, sr := range done.Steps {
		st := order[i]
		var rec *budget.Record
		var events, policy string
		var job *budget.Config
		switch {
		case sr.Segment != nil && st.Segment != nil:
			rec, events, policy, job = sr.Segment.Spent, st.Segment.Events, st.Segment.Policy, st.Segment.Budget
		case sr.Train != nil && st.Train != nil:
			rec, events, policy, job = sr.Train.Spent, st.Train.Events, st.Train.Policy, st.Train.Budget
			if a := sr.Train.Audit; a != nil {
				proven := "non-private"
				if a.ProvenEpsilon != nil {
					proven = num(*a.ProvenEpsilon)
				}
				p.Audits = append(p.Audits, AuditResult{Step: sr.Step, Kind: "one-run audit (canaries)", ProvenEpsilon: proven,
					LowerBound: a.EpsilonLowerBound, Confidence: a.Confidence,
					Detail: fmt.Sprintf("%d of %d guesses correct; membership-inference AUC %.3f", a.Correct, a.Guesses, a.MembershipAUC)})
			}
		}
		if rec == nil || seen[rec.Dataset] {
			continue
		}
		seen[rec.Dataset] = true
		l := ledger(ctx, rec.Dataset, events, policy, job, day, opt)
		if rec.SetBy != "" {
			l.SetBy = release.SetByNote(rec.SetBy) // as the ledger recorded it when the run spent
		}
		p.Ledgers = append(p.Ledgers, l)
	}
	auditURL := spec.Audit
	if auditURL == "" {
		auditURL = dataset.ChildURL(spec.State, "audit")
	}
	store, err := open.Store(ctx, auditURL, opt.URL)
	if err != nil {
		return nil, err
	}
	p.AuditLog = AuditLog{Location: store.Location()}
	recs, err := lineage.OpenAudit(store, "").Verify(ctx)
	if err != nil {
		p.AuditLog.Error = err.Error()
	} else {
		p.AuditLog.Intact = true
	}
	ids := map[string]bool{done.RunID: true}
	for _, sr := range done.Steps {
		ids[sr.RunID] = true
	}
	for _, r := range recs {
		if ids[r.RunID] {
			p.AuditLog.Records = append(p.AuditLog.Records, AuditEntry{Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339), Principal: r.Principal, Job: r.Job, Outcome: r.Outcome})
		}
	}
	return p, nil
}

// ledger reads one dataset identity's spend. A ledger that cannot be read
// is shown as such, not hidden.
func ledger(ctx context.Context, identity, events, policy string, job *budget.Config, day time.Time, opt Options) Ledger {
	l := Ledger{Identity: identity}
	b, err := release.Resolve(ctx, events, job, policy, opt.URL)
	if err != nil {
		l.Error = err.Error()
		return l
	}
	l.Ledger, l.SetBy, l.Epsilon, l.Delta, l.Period = b.Ledger, release.SetByNote(b.SetBy), b.Epsilon, b.Delta, b.Period
	store, err := open.Store(ctx, b.Ledger, opt.URL)
	if err != nil {
		l.Error = err.Error()
		return l
	}
	st, err := budget.Open(store, "").Status(ctx, identity, &b.Policy, day)
	if err != nil {
		l.Error = err.Error()
		return l
	}
	for _, ps := range st.Periods {
		l.Periods = append(l.Periods, Period{Period: ps.Period, Epsilon: ps.Spent, Delta: ps.Delta, Runs: ps.Runs})
	}
	for _, r := range st.Runs {
		periods := strings.Join(r.Periods, ", ")
		if periods == "" {
			periods = r.Period
		}
		rel := Release{RunID: r.RunID, Job: r.Job, LogicalDate: r.LogicalDate, Accountant: r.Accountant, Epsilon: r.Epsilon, Delta: r.Delta, Periods: periods}
		for _, e := range r.Events {
			rel.Mechanisms = append(rel.Mechanisms, Mechanism{Mechanism: string(e.Mechanism), Plan: plan(e.SamplingRate, e.NoiseMultiplier, e.Sigma, e.Scale, e.Sensitivity), Count: e.Count, Note: e.Note})
		}
		l.Releases = append(l.Releases, rel)
	}
	return l
}

func plan(q, z, sigma, scale float64, sens int) string {
	var parts []string
	if q != 0 {
		parts = append(parts, "sampling rate "+num(q))
	}
	if z != 0 {
		parts = append(parts, "noise multiplier "+num(z))
	}
	if sigma != 0 {
		parts = append(parts, "σ "+num(sigma))
	}
	if scale != 0 {
		parts = append(parts, "scale "+num(scale))
	}
	if sens != 0 {
		parts = append(parts, fmt.Sprintf("sensitivity %d", sens))
	}
	return strings.Join(parts, ", ")
}
