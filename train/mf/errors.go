package mf

import "errors"

var (
	// ErrConfig reports invalid training settings.
	ErrConfig = errors.New("invalid training configuration")
	// ErrDiverged reports a training run whose loss or factors stopped
	// being finite.
	ErrDiverged = errors.New("training diverged")
	// ErrNoItemSelected reports a private run without a catalog in which
	// no item's noisy count passed DP partition selection: the model
	// would release no item.
	ErrNoItemSelected = errors.New("no item passed DP partition selection")
)
