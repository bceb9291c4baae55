package lineage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/pseudonym"
)

// ReadEvents reads every event a StoreTransport wrote under prefix, in the
// order they were sent. An object that is not an event is an error naming
// it: the store is veil's own record, and a corrupt one is reported.
func ReadEvents(ctx context.Context, s dataset.Store, prefix string) ([]Event, error) {
	type keyed struct {
		key string
		ev  Event
	}
	var all []keyed
	for info, err := range s.List(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(info.Key, ".json") {
			continue
		}
		data, err := dataset.ReadAll(ctx, s, info.Key)
		if err != nil {
			return nil, err
		}
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil || ev.Run.RunID == "" || ev.EventType == "" {
			return nil, fmt.Errorf("lineage event %s/%s: not an OpenLineage run event (%v)", s.Location(), info.Key, err)
		}
		all = append(all, keyed{info.Key, ev})
	}
	// Keys sort by day and run; within a run by send time and sequence.
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].ev.EventTime.Equal(all[j].ev.EventTime) {
			return all[i].ev.EventTime.Before(all[j].ev.EventTime)
		}
		return all[i].key < all[j].key
	})
	out := make([]Event, len(all))
	for i, k := range all {
		out[i] = k.ev
	}
	return out, nil
}

// RunNode is one run as its events describe it.
type RunNode struct {
	RunID, Job      string
	Parent          string // run id of the pipeline run of a step
	State           string // the last event's type
	Started, Ended  time.Time
	Error           string
	Inputs, Outputs []Dataset
	Facets          map[string]Facet // run facets, later events overriding
}

// Graph links runs and datasets: a dataset is an input of the runs that
// read it and an output of the runs that wrote it.
type Graph struct {
	Runs      map[string]*RunNode
	order     []string
	producers map[string][]string // dataset key -> run ids
	consumers map[string][]string
}

// Key names a dataset uniquely: namespace and name.
func (d Dataset) Key() string {
	if strings.HasPrefix(d.Namespace, "s3://") {
		return d.Namespace + "/" + strings.TrimPrefix(d.Name, "/")
	}
	return d.Namespace + "://" + d.Name
}

// URL is where the dataset lives, as veil's stores name it.
func (d Dataset) URL() string { return d.Key() }

// BuildGraph folds events into runs and dataset edges.
func BuildGraph(events []Event) *Graph {
	g := &Graph{Runs: map[string]*RunNode{}, producers: map[string][]string{}, consumers: map[string][]string{}}
	for _, ev := range events {
		r := g.Runs[ev.Run.RunID]
		if r == nil {
			r = &RunNode{RunID: ev.Run.RunID, Job: ev.Job.Name, Facets: map[string]Facet{}}
			g.Runs[ev.Run.RunID] = r
			g.order = append(g.order, ev.Run.RunID)
		}
		r.State = ev.EventType
		if ev.EventType == "START" || ev.EventType == "COMPLETE" {
			// A resumed run (same run id after an ABORT or FAIL) starts
			// afresh: its old error is not its state any more.
			r.Error = ""
			delete(r.Facets, "errorMessage")
		}
		if ev.EventType == "START" && r.Started.IsZero() {
			r.Started = ev.EventTime
		} else if ev.EventType != "START" {
			r.Ended = ev.EventTime
		}
		for k, f := range ev.Run.Facets {
			r.Facets[k] = f
		}
		if p, ok := ev.Run.Facets["parent"]["run"].(map[string]any); ok {
			r.Parent, _ = p["runId"].(string)
		}
		if m, ok := ev.Run.Facets["errorMessage"]["message"].(string); ok {
			r.Error = m
		}
		r.Inputs = mergeDatasets(r.Inputs, ev.Inputs)
		r.Outputs = mergeDatasets(r.Outputs, ev.Outputs)
	}
	for _, id := range g.order {
		r := g.Runs[id]
		for _, d := range r.Inputs {
			g.consumers[d.Key()] = append(g.consumers[d.Key()], id)
		}
		for _, d := range r.Outputs {
			g.producers[d.Key()] = append(g.producers[d.Key()], id)
		}
	}
	return g
}

func mergeDatasets(have, more []Dataset) []Dataset {
	for _, d := range more {
		found := false
		for _, h := range have {
			found = found || h.Key() == d.Key()
		}
		if !found {
			have = append(have, d)
		}
	}
	return have
}

// FindRun returns the run with this id or unique id prefix.
func (g *Graph) FindRun(id string) (*RunNode, error) {
	if r := g.Runs[id]; r != nil {
		return r, nil
	}
	var found *RunNode
	for _, rid := range g.order {
		if strings.HasPrefix(rid, id) {
			if found != nil {
				return nil, fmt.Errorf("run id prefix %q is ambiguous: %s and %s", id, found.RunID, rid)
			}
			found = g.Runs[rid]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no run %q in the lineage records", id)
	}
	return found, nil
}

// FindDataset returns the keys of the datasets named target: a full key
// (file:///a/b, s3://bucket/key), a path, or a suffix of one.
func (g *Graph) FindDataset(target string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, m := range []map[string][]string{g.producers, g.consumers} {
		for k := range m {
			if !seen[k] && (k == target || strings.HasSuffix(k, target)) {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// Children are the step runs of a pipeline run, in order.
func (g *Graph) Children(id string) []*RunNode {
	var out []*RunNode
	for _, rid := range g.order {
		if g.Runs[rid].Parent == id {
			out = append(out, g.Runs[rid])
		}
	}
	return out
}

// Producers and Consumers are the runs that wrote and read a dataset.
func (g *Graph) Producers(key string) []*RunNode { return g.nodes(g.producers[key]) }
func (g *Graph) Consumers(key string) []*RunNode { return g.nodes(g.consumers[key]) }

func (g *Graph) nodes(ids []string) []*RunNode {
	out := make([]*RunNode, len(ids))
	for i, id := range ids {
		out[i] = g.Runs[id]
	}
	return out
}

// WriteRun prints a run with its upstream (inputs and the runs that
// produced them) and downstream (outputs and the runs that read them).
func (g *Graph) WriteRun(w io.Writer, r *RunNode) {
	fmt.Fprintf(w, "run %s  job %s  %s", r.RunID, r.Job, r.State)
	if !r.Started.IsZero() {
		fmt.Fprintf(w, "  %s", r.Started.Format(time.RFC3339))
	}
	if !r.Ended.IsZero() && !r.Started.IsZero() {
		fmt.Fprintf(w, " (%s)", r.Ended.Sub(r.Started).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	if r.Parent != "" {
		if p := g.Runs[r.Parent]; p != nil {
			fmt.Fprintf(w, "  part of: %s (%s, %s)\n", p.RunID, p.Job, p.State)
		} else {
			fmt.Fprintf(w, "  part of: %s\n", r.Parent)
		}
	}
	for _, c := range g.Children(r.RunID) {
		fmt.Fprintf(w, "  step: %s %s %s\n", c.Job, c.RunID, c.State)
	}
	if p, ok := r.Facets["veil_privacy"]; ok {
		fmt.Fprintf(w, "  privacy: purposes %s, rows read %s kept %s", words(p["purposes"]), count(p["rowsRead"]), count(p["rowsKept"]))
		if drops, ok := p["rowsDropped"].(map[string]any); ok {
			var parts []string
			for reason, n := range drops {
				if n, _ := n.(float64); n > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", reason, int64(n)))
				}
			}
			sort.Strings(parts)
			if len(parts) > 0 {
				fmt.Fprintf(w, ", dropped: %s", strings.Join(parts, ", "))
			}
		}
		if eps, ok := p["epsilon"].(float64); ok {
			delta, _ := p["delta"].(float64)
			fmt.Fprintf(w, "; spent ε=%.4g δ=%.4g (%s)", eps, delta, words(p["accountant"]))
		}
		fmt.Fprintln(w)
	}
	for _, d := range r.Inputs {
		fmt.Fprintf(w, "  upstream   %s", d.Key())
		for _, p := range g.Producers(d.Key()) {
			fmt.Fprintf(w, " <- %s %s", p.Job, p.RunID)
		}
		fmt.Fprintln(w)
	}
	for _, d := range r.Outputs {
		fmt.Fprintf(w, "  downstream %s", d.Key())
		for _, c := range g.Consumers(d.Key()) {
			fmt.Fprintf(w, " -> %s %s", c.Job, c.RunID)
		}
		fmt.Fprintln(w)
	}
}

// WriteDataset prints the runs that wrote and read a dataset.
func (g *Graph) WriteDataset(w io.Writer, key string) {
	fmt.Fprintf(w, "dataset %s\n", key)
	for _, p := range g.Producers(key) {
		fmt.Fprintf(w, "  written by %s %s %s %s\n", p.Job, p.RunID, p.State, p.Ended.Format(time.RFC3339))
	}
	for _, c := range g.Consumers(key) {
		fmt.Fprintf(w, "  read by    %s %s %s %s\n", c.Job, c.RunID, c.State, c.Started.Format(time.RFC3339))
	}
}

// WriteDot prints the runs (boxes) and datasets (ellipses) in Graphviz
// dot, edges from inputs to runs to outputs and from pipeline runs to
// their steps (dashed).
func (g *Graph) WriteDot(w io.Writer, runs []*RunNode) {
	fmt.Fprintln(w, "digraph lineage {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];")
	datasets := map[string]bool{}
	for _, r := range runs {
		label := fmt.Sprintf("%s\n%s\n%s", r.Job, r.RunID[:min(8, len(r.RunID))], r.State)
		fmt.Fprintf(w, "  %q [shape=box, label=%q];\n", "run:"+r.RunID, label)
		if r.Parent != "" {
			fmt.Fprintf(w, "  %q -> %q [style=dashed];\n", "run:"+r.Parent, "run:"+r.RunID)
		}
		for _, d := range r.Inputs {
			datasets[d.Key()] = true
			fmt.Fprintf(w, "  %q -> %q;\n", "ds:"+d.Key(), "run:"+r.RunID)
		}
		for _, d := range r.Outputs {
			datasets[d.Key()] = true
			fmt.Fprintf(w, "  %q -> %q;\n", "run:"+r.RunID, "ds:"+d.Key())
		}
	}
	keys := make([]string, 0, len(datasets))
	for k := range datasets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %q [shape=ellipse, label=%q];\n", "ds:"+k, k)
	}
	fmt.Fprintln(w, "}")
}

// Neighbourhood is a run with its parent, steps, and the runs that
// produced its inputs or read its outputs: what show prints.
func (g *Graph) Neighbourhood(r *RunNode) []*RunNode {
	seen := map[string]bool{}
	var out []*RunNode
	add := func(n *RunNode) {
		if n != nil && !seen[n.RunID] {
			seen[n.RunID] = true
			out = append(out, n)
		}
	}
	add(g.Runs[r.Parent])
	add(r)
	for _, c := range g.Children(r.RunID) {
		add(c)
	}
	for _, n := range append([]*RunNode(nil), out...) {
		for _, d := range n.Inputs {
			for _, p := range g.Producers(d.Key()) {
				add(p)
			}
		}
		for _, d := range n.Outputs {
			for _, c := range g.Consumers(d.Key()) {
				add(c)
			}
		}
	}
	return out
}

// Hit is a run whose contributors filter accepts a subject.
type Hit struct {
	RunID, Job, LogicalDate string
	Outputs                 []string
	Filter                  string
	FPR                     float64
}

// Impact lists the completed runs whose contributors filter may contain
// the subject token; checked counts the filters it read. A filter that is
// gone (the output was purged) is skipped and listed in missing. Keyed
// filters are tested with the steward key (LoadStewardKey; nil if none is
// configured), or, for a filter with a random key of its own, with the key
// stored beside it; a filter whose key is not available is an error
// wrapping ErrBloomKey, since skipping it would hide an affected output.
func (g *Graph) Impact(ctx context.Context, token string, steward *pseudonym.Key, opt dataset.URLOptions) (hits []Hit, checked int, missing []string, err error) {
	for _, id := range g.order {
		r := g.Runs[id]
		f, ok := r.Facets["veil_contributors"]
		if !ok || r.State != "COMPLETE" {
			continue
		}
		url, _ := f["filter"].(string)
		data, err := readURL(ctx, url, opt)
		if errors.Is(err, dataset.ErrNotExist) {
			missing = append(missing, url)
			continue
		}
		if err != nil {
			return nil, 0, nil, fmt.Errorf("run %s: contributors filter %q: %w", id, url, err)
		}
		var b Bloom
		if err := b.UnmarshalBinary(data); err != nil {
			return nil, 0, nil, fmt.Errorf("run %s: %s: %w", id, url, err)
		}
		var own []byte
		if b.KeyID() == KeyIDRandom {
			text, err := readURL(ctx, KeyLocation(url), opt)
			if err != nil && !errors.Is(err, dataset.ErrNotExist) {
				return nil, 0, nil, fmt.Errorf("run %s: key of %s: %w", id, url, err)
			}
			own, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
		}
		if err := b.SetKey(steward, own); err != nil {
			return nil, 0, nil, fmt.Errorf("run %s: %s: %w", id, url, err)
		}
		checked++
		if !b.MayContain(token) {
			continue
		}
		h := Hit{RunID: id, Job: r.Job, Filter: url, FPR: b.FPR()}
		if p, ok := r.Facets["veil_privacy"]; ok {
			h.LogicalDate, _ = p["logicalDate"].(string)
		}
		for _, d := range r.Outputs {
			h.Outputs = append(h.Outputs, d.URL())
		}
		hits = append(hits, h)
	}
	return hits, checked, missing, nil
}

func readURL(ctx context.Context, url string, opt dataset.URLOptions) ([]byte, error) {
	ref, err := open.Ref(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	return dataset.ReadAll(ctx, ref.Store, ref.Key)
}

// VerifyOutputs checks each output of a run against its manifest's
// checksums; it returns one line per output, and an error if any failed.
func VerifyOutputs(ctx context.Context, r *RunNode, opt dataset.URLOptions) ([]string, error) {
	if r.State != "COMPLETE" {
		return nil, fmt.Errorf("run %s (%s) ended %s: it committed no outputs to verify", r.RunID, r.Job, r.State)
	}
	var lines []string
	var bad error
	for _, d := range r.Outputs {
		ref, err := open.Ref(ctx, d.URL(), opt)
		if err == nil {
			var m *dataset.Manifest
			if m, err = dataset.VerifyManifest(ctx, ref.Store, ref.Key); err == nil {
				lines = append(lines, fmt.Sprintf("ok   %s: %d files, %d rows, checksums match", d.URL(), len(m.Files), m.Rows))
				continue
			}
		}
		lines = append(lines, fmt.Sprintf("FAIL %s: %v", d.URL(), err))
		if bad == nil {
			bad = fmt.Errorf("run %s: output %s does not match its manifest: %w", r.RunID, d.URL(), err)
		}
	}
	return lines, bad
}

// words prints a JSON string or list of strings for people: "a, b".
func words(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ", ")
	case nil:
		return "none"
	}
	return fmt.Sprint(v)
}

// count prints a JSON number that counts something as an integer
// (encoding/json decodes it as a float64, which %v prints as 1.2e+06).
func count(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatInt(int64(f), 10)
	}
	return "?"
}
