package train

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/privacy/budget"
)

// A prepared interactions table reads back (veil train mf --in) as the
// interactions the training job loads.
func TestPrepareInteractionsRoundTrip(t *testing.T) {
	dir := shop(t, 400)
	cfg := jobConfig(dir)
	rep, err := PrepareInteractions(context.Background(), cfg, logical, filepath.Join(dir, "interactions"), 3, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFiltered(context.Background(), cfg, logical, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, filtered, err := LoadEvents(context.Background(), f.Inputs.Policy, f.Filter, f.Inputs.Events, cfg.Interactions, logical, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(context.Background(), rep.Output, nil, dataset.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the prepared table does not read back as the loaded interactions")
	}
	if rep.Subjects != int64(len(want.Subjects)) || rep.Filter.RowsKept != filtered.RowsKept || rep.Shards != 3 {
		t.Errorf("report %+v", rep)
	}
}

// A prepared interactions table carries its events' identity, whatever
// budget.dataset the job declares: veil train mf --in over it charges the
// events' budget.
func TestPrepareInteractionsCarriesTheEventsIdentity(t *testing.T) {
	ctx := context.Background()
	dir := shop(t, 200)
	cfg := jobConfig(dir)
	cfg.Budget = &budget.Config{Dataset: "other"}
	rep, err := PrepareInteractions(ctx, cfg, logical, filepath.Join(dir, "interactions"), 2, dataset.URLOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eref, _ := open.Ref(ctx, cfg.Events, dataset.URLOptions{})
	events, err := dataset.ReadManifest(ctx, eref.Store, eref.Key)
	if err != nil || events.Identity == "" {
		t.Fatalf("events manifest %+v, %v", events, err)
	}
	ref, _ := open.Ref(ctx, rep.Output, dataset.URLOptions{})
	m, err := dataset.ReadManifest(ctx, ref.Store, ref.Key)
	if err != nil || m.Identity != events.Identity {
		t.Errorf("the prepared table carries identity %q (%v), want the events' %s", m.Identity, err, events.Identity)
	}
}

// A prepared interactions table is no DP release, but a DP pipeline
// prepares one: its exact counts are logged at debug level only.
func TestPrepareInteractionsLogsCountsAtDebugOnly(t *testing.T) {
	dir := shop(t, 200)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, err := PrepareInteractions(context.Background(), jobConfig(dir), logical, filepath.Join(dir, "interactions"), 2, dataset.URLOptions{}, log); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"subjects"`, `"interactions"`} {
		if strings.Contains(logs.String(), k) {
			t.Errorf("%s logged at info level:\n%s", k, logs.String())
		}
	}
}
