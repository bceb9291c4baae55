package segment

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy"
)

// Recheck is what re-evaluating committed exports against the consent
// ledger as of a logical date found.
type Recheck struct {
	LogicalDate     string          `json:"logical_date"`
	ConsentSnapshot string          `json:"consent_snapshot_sha256"`
	Exports         []ExportRecheck `json:"exports"`
	Subjects        int             `json:"subjects_checked"`
	Recall          int             `json:"subjects_to_recall"`
}

// ExportRecheck is one committed export.
type ExportRecheck struct {
	Output      string `json:"output"`
	LogicalDate string `json:"export_logical_date"`
	RunID       string `json:"run_id"`
	Subjects    int    `json:"subjects"`
	// Recall lists the subjects who may no longer be in the export, with
	// why: withdrew or denied a purpose, opted out, or asked for erasure.
	Recall   []RecallSubject `json:"recall"`
	ByReason map[string]int  `json:"by_reason"`
}

// RecallSubject is a subject to take out of an export.
type RecallSubject struct {
	SubjectID string `json:"subject_id"`
	Reason    string `json:"reason"`
}

// RecheckExports re-evaluates every committed export under the job's output
// (OUTPUT/dt=*/run=*/assignments.parquet, or its shards
// assignments-NNNNN.parquet from veil segment assign or veil-beam assign) against the consent and erasure
// tables as of day: a subject in an export who no longer allows
// segmentation and marketing, or asked for erasure, is listed to be
// recalled. Exports of logical dates after day are left out.
func RecheckExports(ctx context.Context, cfg Config, day time.Time, opt dataset.URLOptions) (*Recheck, error) {
	purposes := []string{privacy.Segmentation, privacy.Marketing}
	in, err := cfg.Open(ctx, purposes, opt)
	if err != nil {
		return nil, err
	}
	ix, err := privacy.BuildConsentIndex(ctx, in.Policy, &in.Consent, &in.Erasure, day)
	if err != nil {
		return nil, err
	}
	out, err := open.Ref(ctx, cfg.Output, opt)
	if err != nil {
		return nil, err
	}
	rc := &Recheck{LogicalDate: day.Format(time.DateOnly), ConsentSnapshot: ix.Stats().Snapshot}
	// Committed runs: their manifests.
	prefix := strings.TrimSuffix(out.Key, "/")
	if prefix != "" {
		prefix += "/"
	}
	var runs []string
	for info, err := range out.Store.List(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		if path.Base(info.Key) == dataset.ManifestName {
			runs = append(runs, path.Dir(info.Key))
		}
	}
	slices.Sort(runs)
	for _, run := range runs {
		rel := strings.TrimPrefix(run, prefix)
		dt, id, ok := parseRunDir(rel)
		if !ok || dt > rc.LogicalDate {
			continue
		}
		m, err := dataset.ReadManifest(ctx, out.Store, run)
		if err != nil {
			return nil, err
		}
		keys := assignmentKeys(m, run)
		if len(keys) == 0 {
			continue
		}
		er := ExportRecheck{Output: out.Store.Location() + "/" + run, LogicalDate: dt, RunID: id, ByReason: map[string]int{}}
		sc, err := dataset.OpenScan(ctx, out.Store, keys, dataset.CohortAssignmentsContract, "subject_id")
		if err != nil {
			return nil, err
		}
		var b dataset.Batch
		for _, u := range sc.Units() {
			if err := sc.Read(ctx, u, &b); err != nil {
				sc.Close()
				return nil, err
			}
			subj := b.Column("subject_id").Str
			for i := range b.Rows {
				token, _ := subj.At(i)
				er.Subjects++
				if r := ix.Decide(token, purposes); r != privacy.Keep {
					er.Recall = append(er.Recall, RecallSubject{SubjectID: token, Reason: r.String()})
					er.ByReason[r.String()]++
				}
			}
		}
		sc.Close()
		rc.Subjects += er.Subjects
		rc.Recall += len(er.Recall)
		rc.Exports = append(rc.Exports, er)
	}
	return rc, nil
}

// assignmentKeys returns the keys of the cohort assignments a committed
// export under run holds, whichever engine wrote it: veil segment (one
// assignments.parquet), or veil segment assign and veil-beam assign (shards
// assignments-NNNNN.parquet). None: not an export.
func assignmentKeys(m *dataset.Manifest, run string) []string {
	if f, ok := m.Find("assignments.parquet"); ok {
		return []string{dataset.Join(run, f.Key)}
	}
	var keys []string
	for i := 0; ; i++ {
		f, ok := m.Find(AssignmentShardFile(i))
		if !ok {
			return keys
		}
		keys = append(keys, dataset.Join(run, f.Key))
	}
}

// parseRunDir reads "dt=D/run=ID".
func parseRunDir(rel string) (dt, id string, ok bool) {
	a, b, ok := strings.Cut(rel, "/")
	if !ok || !strings.HasPrefix(a, "dt=") || !strings.HasPrefix(b, "run=") || strings.Contains(b, "/") {
		return "", "", false
	}
	return a[3:], b[4:], true
}

// Summary is a one-line account of a recheck.
func (r *Recheck) Summary() string {
	return fmt.Sprintf("%d exports, %d subjects checked against consent as of %s: %d to recall", len(r.Exports), r.Subjects, r.LogicalDate, r.Recall)
}
