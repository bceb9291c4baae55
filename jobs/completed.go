package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// ErrNotCompleted is returned by ReadCompleted when no run of the
// pipeline completed the logical date.
var ErrNotCompleted = errors.New("no completed run")

// Completed is the completed run of a pipeline for a logical date, as its
// latest pointer and step records hold it. The step records are the full
// reports, steward figures included: show a DP step's report to anyone
// but the data steward only through its Public method.
type Completed struct {
	Job         string            `json:"job"`
	LogicalDate string            `json:"logical_date"`
	RunID       string            `json:"run_id"`
	CompletedAt time.Time         `json:"completed_at"`
	Outputs     map[string]string `json:"outputs"`
	// Steps are the step records in the order the steps ran.
	Steps []StepResult `json:"steps"`
}

// ReadCompleted reads the run that the latest pointer of (spec, day)
// names and its step records.
func ReadCompleted(ctx context.Context, spec *Spec, day time.Time, opt dataset.URLOptions) (*Completed, error) {
	var err error
	if opt, err = withStorage(opt, spec.Storage); err != nil {
		return nil, err
	}
	order, err := spec.Order()
	if err != nil {
		return nil, err
	}
	store, err := open.Store(ctx, spec.State, opt)
	if err != nil {
		return nil, err
	}
	date := day.UTC().Format(time.DateOnly)
	prefix := dataset.Join(spec.Name, "dt="+date)
	data, err := dataset.ReadAll(ctx, store, dataset.Join(prefix, "latest.json"))
	if errors.Is(err, dataset.ErrNotExist) {
		return nil, fmt.Errorf("%s for %s in %s: %w", spec.Name, date, store.Location(), ErrNotCompleted)
	} else if err != nil {
		return nil, err
	}
	var p pointer
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s/%s/latest.json: %w", store.Location(), prefix, err)
	}
	c := &Completed{Job: spec.Name, LogicalDate: date, RunID: p.RunID, CompletedAt: p.Completed, Outputs: p.Outputs}
	for _, st := range order {
		key := dataset.Join(prefix, "runs", p.RunID, st.Name+".json")
		data, err := dataset.ReadAll(ctx, store, key)
		if err != nil {
			return nil, fmt.Errorf("reading the record of step %s: %w", st.Name, err)
		}
		var sr StepResult
		if err := json.Unmarshal(data, &sr); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", store.Location(), key, err)
		}
		c.Steps = append(c.Steps, sr)
	}
	return c, nil
}
