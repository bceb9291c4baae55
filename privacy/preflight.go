package privacy

import (
	"context"
	"errors"
	"fmt"

	"github.com/veil-privacy/veil/dataset"
)

// CheckContracts reads the footers of the job's tables (no row of
// subjects' data) and checks them against their contracts: the events
// table must exist and satisfy the events contract; consent and erasure,
// when present, theirs. The release path runs it before any budget is
// spent, so that a table of the wrong shape costs nothing.
func (in *JobInputs) CheckContracts(ctx context.Context) error {
	for _, t := range []struct {
		ref      dataset.Ref
		contract *dataset.Contract
		required bool
	}{{in.Events, dataset.EventsContract, true}, {in.Consent, dataset.ConsentContract, false}, {in.Erasure, dataset.ErasureContract, false}} {
		keys, err := dataset.Inputs(ctx, t.ref, dataset.Window{})
		if errors.Is(err, dataset.ErrNotExist) && !t.required {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking the %s table %s: %w", t.contract.Name, t.ref.Store.Location()+"/"+t.ref.Key, err)
		}
		if len(keys) == 0 && t.required {
			return fmt.Errorf("checking the %s table %s: %w: no Parquet files", t.contract.Name, t.ref.Store.Location()+"/"+t.ref.Key, dataset.ErrNotExist)
		}
		sc, err := dataset.OpenScan(ctx, t.ref.Store, keys, t.contract)
		if err != nil {
			return fmt.Errorf("checking the %s table: %w", t.contract.Name, err)
		}
		sc.Close()
	}
	return nil
}
