package train

import "errors"

var (
	// ErrConfig reports invalid training settings.
	ErrConfig = errors.New("invalid training configuration")
	// ErrDiverged reports a training run whose loss or factors stopped
	// being finite.
	ErrDiverged = errors.New("training diverged")
)
