package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/ingest"
	"github.com/veil-privacy/veil/internal/exitcode"
	"github.com/veil-privacy/veil/internal/failpoint"
	"github.com/veil-privacy/veil/privacy"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/train"
)

// Options are what a run takes besides the spec.
type Options struct {
	LogicalDate time.Time
	Force       bool   // run again although the date completed: a new run that supersedes the old one
	Holder      string // who runs (for the lock and records); default user@host:pid
	URL         dataset.URLOptions
	Log         *slog.Logger
	Now         func() time.Time
	// OnStep is called after each step with its report (for metrics).
	OnStep func(StepResult)
	// OnStart is called before the i-th step (0-based) of n, also for a
	// step an earlier attempt completed (for progress bars).
	OnStart func(i, n int, step string)
	// Getenv reads the environment (API keys, principal); nil: os.Getenv.
	Getenv func(string) string
	// Console receives events when the spec asks for console lineage.
	Console io.Writer
	// Version is veil's version, for the processing_engine facet.
	Version string
}

// StepResult is what one step did.
type StepResult struct {
	Step    string          `json:"step"`
	RunID   string          `json:"run_id"`
	Skipped bool            `json:"skipped,omitempty"` // completed by an earlier attempt of this run
	Output  string          `json:"output"`
	Seconds float64         `json:"seconds"`
	Segment *segment.Report `json:"segment,omitempty"`
	Train   *train.Report   `json:"train,omitempty"`
	// Pseudonymize is set for a pseudonymize step.
	Pseudonymize *ingest.Summary `json:"pseudonymize,omitempty"`
	Finished     time.Time       `json:"finished_at"`
}

// Result is what veil run did.
type Result struct {
	Job         string       `json:"job"`
	LogicalDate string       `json:"logical_date"`
	RunID       string       `json:"run_id"`
	NoOp        bool         `json:"no_op,omitempty"`
	Message     string       `json:"message"`
	Steps       []StepResult `json:"steps"`
	Seconds     float64      `json:"seconds"`
}

// pointer is the latest pointer of a (job, logical date).
type pointer struct {
	RunID      string            `json:"run_id"`
	SpecHash   string            `json:"spec_sha256"`
	Completed  time.Time         `json:"completed_at"`
	Outputs    map[string]string `json:"outputs"`
	Supersedes string            `json:"supersedes,omitempty"`
}

// attempt is the record of a run in progress for a (job, date): its run id
// survives crashes so that a retry resumes it.
type attempt struct {
	RunID    string    `json:"run_id"`
	SpecHash string    `json:"spec_sha256"`
	Started  time.Time `json:"started_at"`
	Force    bool      `json:"force,omitempty"`
}

// Hash is the SHA-256 of a spec's canonical JSON: a changed spec is a new
// pipeline for idempotency.
func (s *Spec) Hash() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Run runs the pipeline for a logical date: it takes the lock, resumes or
// starts the date's attempt, runs the steps not yet done in dependency
// order, switches the latest pointer, and releases the lock. A date whose
// pointer exists for the same spec is a no-op unless Force.
func Run(ctx context.Context, spec *Spec, opt Options) (*Result, error) {
	start := time.Now()
	if opt.Getenv == nil {
		opt.Getenv = os.Getenv
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	// The spec's storage settings apply to every s3:// URL it opens.
	var err error
	if opt.URL, err = withStorage(opt.URL, spec.Storage); err != nil {
		return nil, err
	}
	if opt.Holder == "" {
		opt.Holder = defaultHolder()
	}
	if u := spec.unencryptedWrites(); len(u) > 0 {
		opt.Log.Warn("the pipeline writes to S3 without encryption at rest; set storage.sse (aws:kms) or storage.encryption in the spec", "locations", u)
	}
	order, err := spec.Order()
	if err != nil {
		return nil, err
	}
	if err := checkNonPrivate(ctx, order, opt.URL); err != nil {
		return nil, err
	}
	// Each zone's steps open their stores with the zone's settings.
	for _, st := range order {
		if z := st.Zone(); z != nil && z.Storage != nil {
			if _, err := withStorage(opt.URL, *z.Storage); err != nil {
				return nil, fmt.Errorf("zone %s: %w", z.Name, err)
			}
		}
	}
	store, err := open.Store(ctx, spec.State, opt.URL)
	if err != nil {
		return nil, err
	}
	day := opt.LogicalDate.UTC().Format(time.DateOnly)
	prefix := dataset.Join(spec.Name, "dt="+day)
	res := &Result{Job: spec.Name, LogicalDate: day}
	hash := spec.Hash()

	// Idempotency: a completed date is a no-op.
	var old *pointer
	if data, err := dataset.ReadAll(ctx, store, dataset.Join(prefix, "latest.json")); err == nil {
		var p pointer
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%s/%s/latest.json: %w", store.Location(), prefix, err)
		}
		old = &p
		if p.SpecHash == hash && !opt.Force {
			res.RunID, res.NoOp = p.RunID, true
			res.Message = fmt.Sprintf("%s for %s was completed by run %s at %s; nothing to do (--force runs it again)", spec.Name, day, p.RunID, p.Completed.Format(time.RFC3339))
			return res, nil
		}
	} else if !errors.Is(err, dataset.ErrNotExist) {
		return nil, err
	}

	lock, err := acquire(ctx, store, dataset.Join(prefix, "lock"), opt.Holder, spec.Lock.TTL, opt.Now)
	if err != nil {
		return nil, err
	}
	if lock.tookOver != "" {
		opt.Log.Warn("took the lock over from a run of this host that is gone (killed?) before its lease ended", "holder", lock.tookOver)
	}
	defer lock.release(context.WithoutCancel(ctx))
	// Renew the lease in the background, so that a step longer than the
	// lease keeps the lock; losing it cancels the run.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go lock.keepAlive(ctx, cancel)
	failpoint.Inject("after-lock")

	// The attempt: resume an unfinished one for this spec, else start anew.
	att, err := loadAttempt(ctx, store, prefix)
	if err != nil {
		return nil, err
	}
	if att == nil || att.SpecHash != hash || (opt.Force && !att.Force) || (old != nil && old.RunID == att.RunID) {
		att = &attempt{RunID: uuid.Must(uuid.NewV7()).String(), SpecHash: hash, Started: opt.Now().UTC(), Force: opt.Force}
		if err := putJSON(ctx, store, dataset.Join(prefix, "attempt.json"), att); err != nil {
			return nil, err
		}
	} else {
		opt.Log.Info("resuming run", "job", spec.Name, "logical_date", day, "run_id", att.RunID)
	}
	res.RunID = att.RunID
	rec, err := newRecorder(ctx, spec, opt, att.RunID)
	if err != nil {
		return res, err
	}
	rec.start(ctx)
	// The release path: check the inputs' contracts, plan every DP
	// release of the run and spend each budget once, before any step
	// reads data.
	charged, err := chargeRun(ctx, spec, order, att.RunID, opt)
	if err == nil {
		res, err = runSteps(ctx, spec, opt, store, prefix, att, old, hash, order, res, rec, lock, charged)
	}
	rec.finish(ctx, res, err)
	if err == nil {
		res.Seconds = time.Since(start).Seconds()
	}
	return res, err
}

func runSteps(ctx context.Context, spec *Spec, opt Options, store dataset.Store, prefix string, att *attempt, old *pointer, hash string, order []StepSpec, res *Result, rec *recorder, lock *Lock, charged map[string]*budget.Record) (*Result, error) {
	day := opt.LogicalDate.UTC().Format(time.DateOnly)
	outputs := map[string]string{}
	for i, st := range order {
		if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
			return res, err
		}
		if err := lock.renew(ctx); err != nil {
			return res, err
		}
		if opt.OnStart != nil {
			opt.OnStart(i, len(order), st.Name)
		}
		stepKey := dataset.Join(prefix, "runs", att.RunID, st.Name+".json")
		if data, err := dataset.ReadAll(ctx, store, stepKey); err == nil {
			var done StepResult
			if err := json.Unmarshal(data, &done); err == nil {
				done.Skipped = true
				res.Steps = append(res.Steps, done)
				outputs[st.Name] = done.Output
				opt.Log.Info("step already done", "step", st.Name, "output", done.Output)
				continue
			}
		}
		stepID := stableID(att.RunID, st.Name)
		rec.stepStart(ctx, st, stepID)
		sr, err := runStep(ctx, spec, st, att.RunID, opt, charged[st.Name])
		rec.stepEnd(ctx, st, stepID, sr, err)
		if err != nil {
			return res, fmt.Errorf("step %s: %w", st.Name, err)
		}
		if err := putJSON(ctx, store, stepKey, sr); err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, *sr)
		outputs[st.Name] = sr.Output
		if opt.OnStep != nil {
			opt.OnStep(*sr)
		}
		failpoint.Inject("after-step:" + st.Name)
	}
	failpoint.Inject("before-pointer")
	p := pointer{RunID: att.RunID, SpecHash: hash, Completed: opt.Now().UTC(), Outputs: outputs}
	if old != nil {
		p.Supersedes = old.RunID
	}
	if err := putJSON(ctx, store, dataset.Join(prefix, "latest.json"), p); err != nil {
		return res, err
	}
	res.Message = fmt.Sprintf("%s for %s completed as run %s", spec.Name, day, att.RunID)
	if p.Supersedes != "" {
		res.Message += ", superseding run " + p.Supersedes
	}
	return res, nil
}

// withStorage returns base with the storage settings of s applied: those
// s sets replace base's, so a zone's key id overrides the spec's.
func withStorage(base dataset.URLOptions, s dataset.S3Defaults) (dataset.URLOptions, error) {
	out := base
	if s.SSE != "" || s.SSEKMSKeyID != "" {
		out.S3.SSE, out.S3.SSEKMSKeyID = s.SSE, s.SSEKMSKeyID
	}
	out.S3.AllowHTTP = out.S3.AllowHTTP || s.AllowHTTP
	if e := s.Encryption; e != nil {
		enc, err := e.Options()
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrSpec, err)
		}
		out.S3.Encryption, out.Encryption = e, enc
	}
	return out, nil
}

// runStep runs one step with retries of runtime failures.
func runStep(ctx context.Context, spec *Spec, st StepSpec, runID string, opt Options, charged *budget.Record) (*StepResult, error) {
	backoff := spec.Retries.Backoff
	var err error
	if opt.URL, err = stepURLOptions(st, opt.URL); err != nil {
		return nil, err
	}
	for a := 1; a <= spec.Retries.Attempts; a++ {
		t0 := time.Now()
		// A stable id per (run, step): a retried step spends no budget twice
		// and lands in the same run directory.
		id := stableID(runID, st.Name)
		var sr *StepResult
		sr, err = st.work().run(ctx, runStepEnv{spec: spec, step: st.Name, id: id, opt: opt, charged: charged})
		if err == nil {
			sr.Step, sr.RunID, sr.Seconds, sr.Finished = st.Name, id, time.Since(t0).Seconds(), opt.Now().UTC()
			return sr, nil
		}
		if !Retryable(err) || a == spec.Retries.Attempts {
			break
		}
		opt.Log.Warn("step failed, retrying", "step", st.Name, "attempt", a, "error", err.Error())
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff *= 2
	}
	return nil, err
}

// Retryable reports whether a step error may pass on a retry: runtime
// failures, not refusals, usage errors or cancellation.
func Retryable(err error) bool {
	return exitcode.Classify(err).Retryable()
}

// stableID derives a step's run id from the pipeline run id.
func stableID(runID, step string) string {
	return uuid.NewSHA1(uuid.MustParse(runID), []byte(step)).String()
}

func loadAttempt(ctx context.Context, s dataset.Store, prefix string) (*attempt, error) {
	data, err := dataset.ReadAll(ctx, s, dataset.Join(prefix, "attempt.json"))
	if errors.Is(err, dataset.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a attempt
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%s/%s/attempt.json: %w", s.Location(), prefix, err)
	}
	return &a, nil
}

func putJSON(ctx context.Context, s dataset.Store, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return dataset.PutBytes(ctx, s, key, append(b, '\n'))
}

// defaultHolder names this process as a lock holder, USER@HOST:PID, which
// holderGone reads back. $USER is unset under cron and in many containers,
// so the user comes from the operating system then.
func defaultHolder() string {
	host, _ := os.Hostname()
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil && u.Username != "" {
			name = u.Username
		} else {
			name = fmt.Sprintf("uid%d", os.Getuid())
		}
	}
	return fmt.Sprintf("%s@%s:%d", name, host, os.Getpid())
}

// stewardURL is where a pipeline's steps write their steward reports
// when they name no place: STATE/steward, beside the ledger and the audit
// log, which only the steward and the scheduler may read.
func stewardURL(spec *Spec) string { return dataset.ChildURL(spec.State, "steward") }

// checkNonPrivate refuses, before the pipeline's first step, a step that
// releases without DP (a training step with model.epsilon .inf) whose
// policy (the pinned one when the deployment pins it:
// privacy.ResolvePolicy) does not allow non-private releases: the steps
// before it must not commit either.
func checkNonPrivate(ctx context.Context, order []StepSpec, opt dataset.URLOptions) error {
	for _, st := range order {
		for _, w := range st.works() {
			what := w.nonPrivate()
			if what == "" {
				continue
			}
			// The switch is the pinned policy's when the deployment pins one.
			file, _ := w.policy()
			pol, err := privacy.ResolvePolicy(ctx, file, opt)
			if err != nil {
				return fmt.Errorf("step %s: %w", st.Name, err)
			}
			if err := pol.AllowNonPrivate(what); err != nil {
				return fmt.Errorf("step %s: %w", st.Name, err)
			}
		}
	}
	return nil
}
