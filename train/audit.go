package train

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/privacy/audit"
	"github.com/veil-privacy/veil/privacy/budget"
	"github.com/veil-privacy/veil/train/mf"
)

// whiteBoxNote describes the white-box audit's training run in the ledger.
const whiteBoxNote = "white-box privacy audit: a training run with Dirac canaries (its observations go to the steward)"

// RunWhiteBoxAudit runs the white-box audit of a training job's settings on
// its data at a logical date, without writing a model: the audit's
// training run is a DP release like any other, so its spend is recorded
// (job "privacy audit") before any data is read. Its report is for the
// steward only. A report whose checks flag a fault comes with an error
// wrapping audit.ErrFault.
func RunWhiteBoxAudit(ctx context.Context, cfg JobConfig, wc mf.WhiteBoxConfig, day time.Time, opt dataset.URLOptions, log *slog.Logger) (*audit.Report, *budget.Record, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := wc.Validate(); err != nil {
		return nil, nil, err
	}
	if !cfg.Model.Private() {
		return nil, nil, fmt.Errorf("%w: the white-box audit needs a private model (epsilon)", mf.ErrConfig)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	cfg.Model.Workers = workers
	in, err := cfg.Open(ctx, Purposes, opt)
	if err != nil {
		return nil, nil, err
	}
	plan, err := cfg.Model.MakePlan()
	if err != nil {
		return nil, nil, err
	}
	if cfg.RunID == "" {
		cfg.RunID = uuid.Must(uuid.NewV7()).String()
	}
	rec, err := spend(ctx, cfg, opt, day, "privacy audit", noted(plan.Events(), whiteBoxNote), log)
	if err != nil {
		return nil, nil, err
	}
	data, _, _, err := loadConsented(ctx, in, cfg.Interactions, cfg.JobTables, day, workers)
	if err != nil {
		return nil, rec, err
	}
	rep, err := mf.AuditWhiteBox(ctx, data, cfg.Model, plan, wc, log)
	if err != nil {
		return nil, rec, err
	}
	return rep, rec, rep.Err()
}
