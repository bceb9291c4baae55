package budget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
	"github.com/veil-privacy/veil/privacy/accountant"
	"github.com/veil-privacy/veil/privacy/budget"
)

var ctx = context.Background()

func training(sigma float64, steps int) []accountant.Event {
	return []accountant.Event{{Mechanism: accountant.SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: sigma, Count: steps}}
}

var day = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

func request(run string, events []accountant.Event, p budget.Policy) budget.Request {
	return budget.Request{Dataset: "s3://shop/events", RunID: run, LogicalDate: day, Accountant: "rdp", Events: events, Policy: p}
}

func TestSpendAndRefuse(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "ledger")
	// One run spends about ε 1.71 at δ 1e-5, two together (RDP) about 2.4.
	p := budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: "month"}
	ev := training(1.1, 1000)
	r1, err := l.Spend(ctx, request("run-1", ev, p))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Epsilon < 1.5 || r1.Epsilon > 2 || r1.Period != "2026-11" {
		t.Fatalf("record %+v", r1)
	}
	// The same run again spends nothing.
	again, err := l.Spend(ctx, request("run-1", ev, p))
	if err != nil || again.Seq != 1 {
		t.Fatalf("rerun: %+v, %v", again, err)
	}
	// A second run would pass ε 2.2: refused, with what remains.
	_, err = l.Spend(ctx, request("run-2", ev, p))
	var refused *budget.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("second run: %v, want a refusal", err)
	}
	if refused.Remaining < 0.3 || refused.Remaining > 0.6 || !strings.Contains(err.Error(), "remains") {
		t.Errorf("refusal %v", err)
	}
	// A smaller spend still fits.
	if _, err := l.Spend(ctx, request("run-3", training(4, 100), p)); err != nil {
		t.Errorf("small spend: %v", err)
	}
	// Next month has a fresh budget.
	next := request("run-4", ev, p)
	next.LogicalDate = day.AddDate(0, 1, 0)
	if _, err := l.Spend(ctx, next); err != nil {
		t.Errorf("next month: %v", err)
	}
	st, err := l.Status(ctx, "s3://shop/events", &p, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 2 || st.Remaining == nil || *st.Remaining <= 0 || st.Spent > p.Epsilon {
		t.Errorf("status %+v", st)
	}
}

// Composition across runs is tighter than adding ε: RDP over all events.
func TestPeriodCompositionIsTight(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "")
	p := budget.Policy{Epsilon: 3, Delta: 1e-5, Period: "total"}
	ev := training(1.1, 1000)
	for i := range 2 {
		if _, err := l.Spend(ctx, request(fmt.Sprint("run-", i), ev, p)); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	st, _ := l.Status(ctx, "s3://shop/events", &p, day)
	one, _ := accountant.Spent("rdp", 1e-5, ev...)
	if !(st.Spent < 2*one.Epsilon) {
		t.Errorf("two runs spend %v, not less than twice one run (%v)", st.Spent, 2*one.Epsilon)
	}
}

func TestConcurrentSpendsCannotOverspend(t *testing.T) {
	stores := map[string]func(t *testing.T) dataset.Store{
		"file": func(t *testing.T) dataset.Store { s, _ := dataset.NewFileStore(t.TempDir()); return s },
		"mem":  func(t *testing.T) dataset.Store { return dataset.NewMemStore(t.Name()) },
		"s3": func(t *testing.T) dataset.Store {
			s, err := s3.New(ctx, storetest.S3Bucket(t, "data"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			l := budget.Open(mk(t), "ledger")
			p := budget.Policy{Epsilon: 2, Delta: 1e-5, Period: "total"} // room for one run
			const n = 6
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = l.Spend(ctx, request(fmt.Sprint("run-", i), training(1.1, 1000), p))
				}()
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, budget.ErrExhausted):
					t.Errorf("spend: %v", err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent spends went through a budget for one", ok, n)
			}
			st, err := l.Status(ctx, "s3://shop/events", &p, day)
			if err != nil || len(st.Runs) != 1 || st.Spent > p.Epsilon {
				t.Fatalf("status %+v, %v", st, err)
			}
		})
	}
}

func TestTamperingDetected(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	l := budget.Open(s, "ledger")
	p := budget.Policy{Epsilon: 10, Delta: 1e-5, Period: "total"}
	for i := range 3 {
		if _, err := l.Spend(ctx, request(fmt.Sprint("run-", i), training(2, 100), p)); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for info := range s.List(ctx, "ledger/") {
		keys = append(keys, info.Key)
	}
	// Edit the first record to claim it spent nothing.
	data, _ := dataset.ReadAll(ctx, s, keys[0])
	edited := strings.Replace(string(data), `"epsilon": `, `"epsilon": 0.0000`, 1)
	dataset.PutBytes(ctx, s, keys[0], []byte(edited))
	if _, err := l.Records(ctx, "s3://shop/events"); !errors.Is(err, budget.ErrTampered) {
		t.Errorf("edited record: %v, want ErrTampered", err)
	}
	dataset.PutBytes(ctx, s, keys[0], data)
	s.Delete(ctx, keys[1])
	if _, err := l.Records(ctx, "s3://shop/events"); !errors.Is(err, budget.ErrTampered) {
		t.Errorf("deleted record: %v, want ErrTampered", err)
	}
	if _, err := l.Spend(ctx, request("run-9", training(2, 100), p)); !errors.Is(err, budget.ErrTampered) {
		t.Errorf("spend on a tampered ledger: %v, want ErrTampered", err)
	}
}

func TestBadPolicy(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "")
	for _, p := range []budget.Policy{{0, 1e-5, "total"}, {1, 0, "total"}, {1, 1e-5, "fortnight"}} {
		if _, err := l.Spend(ctx, request("r", training(2, 10), p)); !errors.Is(err, budget.ErrPolicy) {
			t.Errorf("policy %+v: %v, want ErrPolicy", p, err)
		}
	}
}

// A run id already in the ledger is a retry only when it plans the same
// releases; different planned events under a spent run id are refused, so
// that a reused id never releases more than it was charged for.
func TestReusedRunIDWithOtherEventsRefused(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "ledger")
	p := budget.Policy{Epsilon: 100, Delta: 1e-5, Period: "total"}
	ev := training(1.1, 1000)
	first, err := l.Spend(ctx, request("run-x", ev, p))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Spend(ctx, request("run-x", training(1.1, 1000), p))
	if err != nil || again.Seq != first.Seq {
		t.Fatalf("retry with the same events: %+v, %v", again, err)
	}
	more := append(training(1.1, 1000), accountant.Event{Mechanism: accountant.SubsampledGaussian, SamplingRate: 0.01, NoiseMultiplier: 2, Count: 500, Note: "curve point"})
	for name, evs := range map[string][]accountant.Event{"more events": more, "other noise": training(0.9, 1000), "fewer": nil} {
		_, err := l.Spend(ctx, request("run-x", evs, p))
		if !errors.Is(err, budget.ErrRunReused) || !errors.Is(err, budget.ErrPolicy) || !strings.Contains(err.Error(), "run-x") {
			t.Errorf("%s under a spent run id: %v, want ErrRunReused naming the run", name, err)
		}
	}
	if recs, _ := l.Records(ctx, "s3://shop/events"); len(recs) != 1 {
		t.Errorf("%d records, want 1", len(recs))
	}
}

// A release charges every period its data window overlaps: a new month
// grants no fresh budget over events of a month that is exhausted.
func TestWindowChargesEveryPeriod(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "ledger")
	p := budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: "month"}
	nov := request("run-nov", training(1.1, 1000), p) // about ε 1.71
	nov.LogicalDate, nov.WindowDays = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), 90
	r, err := l.Spend(ctx, nov)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2026-08", "2026-09", "2026-10", "2026-11"}; !slices.Equal(r.Periods, want) {
		t.Errorf("a 90-day window to 2026-11-27 charges %v, want %v", r.Periods, want)
	}
	// December 1st, with a window reaching into November: refused, since
	// November is spent, though December is fresh.
	dec := request("run-dec", training(1.1, 1000), p)
	dec.LogicalDate, dec.WindowDays = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 30
	_, err = l.Spend(ctx, dec)
	var refused *budget.RefusedError
	if !errors.As(err, &refused) || refused.Period != "2026-11" {
		t.Fatalf("December run over November's events: %v, want refused for 2026-11", err)
	}
	// A window of December alone is fresh budget.
	dec.WindowDays = 1
	if _, err := l.Spend(ctx, dec); err != nil {
		t.Errorf("December alone: %v", err)
	}
	// Status reports each period: November holds one run, December one.
	for period, runs := range map[string]int{"2026-11": 1, "2026-12": 1, "2026-08": 1, "2026-07": 0} {
		day, _ := time.Parse("2006-01", period)
		st, err := l.Status(ctx, "s3://shop/events", &p, day)
		if err != nil || st.Period != period || len(st.Runs) != runs {
			t.Errorf("status of %s: %d runs (%+v), %v; want %d", period, len(st.Runs), st, err, runs)
		}
	}
	st, _ := l.Status(ctx, "s3://shop/events", &p, day)
	var periods []string
	for _, ps := range st.Periods {
		periods = append(periods, ps.Period)
		if ps.Runs != 1 || ps.Remaining == nil || *ps.Remaining < 0.3 {
			t.Errorf("period %+v", ps)
		}
	}
	if want := []string{"2026-08", "2026-09", "2026-10", "2026-11", "2026-12"}; !slices.Equal(periods, want) {
		t.Errorf("status periods %v, want %v", periods, want)
	}
}

// Records written before windows (one period each) still count.
func TestOldSinglePeriodRecordsCount(t *testing.T) {
	s := dataset.NewMemStore(t.Name())
	old := budget.Record{Seq: 1, Dataset: "s3://shop/events", RunID: "old", LogicalDate: "2026-11-02", Period: "2026-11",
		Accountant: "rdp", Epsilon: 1.71, Delta: 1e-5, Events: training(1.1, 1000)}
	data, _ := json.Marshal(old)
	if _, err := (dataset.Chain{Store: s, Prefix: "ledger/" + url.PathEscape("s3://shop/events")}).Append(ctx, func(_ []dataset.ChainEntry, seq int, prev string) ([]byte, error) {
		return data, nil
	}); err != nil {
		t.Fatal(err)
	}
	l := budget.Open(s, "ledger")
	p := budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: "month"}
	dec := request("run-dec", training(1.1, 1000), p)
	dec.LogicalDate, dec.WindowDays = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 30
	if _, err := l.Spend(ctx, dec); !errors.Is(err, budget.ErrExhausted) {
		t.Errorf("over an old record's month: %v, want refused", err)
	}
}

// A spend is checked against every earlier record whose days overlap its
// periods, whatever period those records were written under: a job with
// period: day cannot give a job with period: month (or total) a fresh
// budget over the same subjects.
func TestRecordsOfAnotherPeriodCount(t *testing.T) {
	l := budget.Open(dataset.NewMemStore(t.Name()), "ledger")
	ev := training(1.1, 1000) // about ε 1.71 at δ 1e-5 alone
	r := request("daily", ev, budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: "day"})
	r.WindowDays = 3
	if _, err := l.Spend(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, period := range []string{"month", "total", "week"} {
		r := request("then-"+period, ev, budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: period})
		if _, err := l.Spend(ctx, r); !errors.Is(err, budget.ErrExhausted) {
			t.Errorf("period %s after a period: day record of the same days: err = %v, want exhausted", period, err)
		}
	}
	// A record whose window ended before the month does not count for it.
	r = request("december", ev, budget.Policy{Epsilon: 2.2, Delta: 1e-5, Period: "month"})
	r.LogicalDate = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if _, err := l.Spend(ctx, r); err != nil {
		t.Errorf("a December window (5 days): %v", err)
	}
}
