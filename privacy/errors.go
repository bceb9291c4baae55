package privacy

import "errors"

var (
	// ErrPolicy is returned for an invalid policy file or a job that asks
	// for what the policy does not allow (unknown purpose, a disallowed
	// column). It is a usage error (exit 2).
	ErrPolicy = errors.New("invalid privacy policy or request")

	// ErrPII is returned (inside a *PIIError) when input holds direct
	// identifiers. It is a refusal by policy (exit 3).
	ErrPII = errors.New("input holds personal identifiers")

	// ErrRefused is returned when the policy refuses what a job asks for
	// although the job and the policy are both valid: a DP release over a
	// table for which the steward's policy sets no budget, or a release
	// without differential privacy that the steward did not switch on. It
	// is a refusal by policy (exit 3), not a usage error.
	ErrRefused = errors.New("refused by the privacy policy")

	// ErrTCString is returned for a malformed IAB TCF TC string.
	ErrTCString = errors.New("malformed TC string")
)
