package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/open"
)

// PolicyEnv names the environment setting that pins the data steward's
// policy file (a path or a URL): the deployment sets it, not the job, so
// that a job cannot choose its own budgets or switches.
const PolicyEnv = "VEIL_POLICY"

// JobPolicy is the policy a job runs under and who chose it.
type JobPolicy struct {
	*Policy
	// File is the policy file, as VEIL_POLICY spells it when pinned and
	// as the job does otherwise; "" for the built-in policy.
	File string
	// SHA256 is the hex SHA-256 of the file's content; "" for the
	// built-in policy.
	SHA256 string
	// Pinned is true when the deployment pinned the policy (VEIL_POLICY):
	// only then is it the data steward's.
	Pinned bool
}

// ResolvePolicy returns the policy of a job that names file ("" for none),
// reading the environment through opt.Getenv. When the deployment pins a
// policy (PolicyEnv), the job runs under it: a job that names no policy
// gets it, and a job that names a file with other content (compared by
// SHA-256, so any spelling of the same file passes) or one that cannot be
// read is refused (ErrRefused). Unpinned, the job's own file (or the
// built-in policy) applies, as the job chose.
func ResolvePolicy(ctx context.Context, file string, opt dataset.URLOptions) (JobPolicy, error) {
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	pin := getenv(PolicyEnv)
	if pin == "" {
		if file == "" {
			return JobPolicy{Policy: DefaultPolicy()}, nil
		}
		return readPolicy(ctx, file, opt)
	}
	jp, err := readPolicy(ctx, pin, opt)
	if err != nil {
		return JobPolicy{}, fmt.Errorf("reading the pinned policy (%s=%s): %w", PolicyEnv, pin, err)
	}
	jp.Pinned = true
	if file == "" || file == pin {
		return jp, nil
	}
	data, err := readFile(ctx, file, opt)
	if err != nil {
		return JobPolicy{}, fmt.Errorf("%w: the job names the policy %s, which cannot be read (%v), and the deployment pins %s (%s): remove the job's policy", ErrRefused, file, err, pin, PolicyEnv)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != jp.SHA256 {
		return JobPolicy{}, fmt.Errorf("%w: the job names the policy %s (sha256 %.12s), not the data steward's %s (sha256 %.12s) that the deployment pins (%s): remove the job's policy", ErrRefused, file, hex.EncodeToString(sum[:]), pin, jp.SHA256, PolicyEnv)
	}
	return jp, nil
}

func readPolicy(ctx context.Context, file string, opt dataset.URLOptions) (JobPolicy, error) {
	data, err := readFile(ctx, file, opt)
	if err != nil {
		return JobPolicy{}, fmt.Errorf("%w: reading policy: %w", ErrPolicy, err)
	}
	pol, err := ParsePolicy(file, data)
	if err != nil {
		return JobPolicy{}, err
	}
	sum := sha256.Sum256(data)
	return JobPolicy{Policy: pol, File: file, SHA256: hex.EncodeToString(sum[:])}, nil
}

// readFile reads a policy file from a path or a URL.
func readFile(ctx context.Context, file string, opt dataset.URLOptions) ([]byte, error) {
	if !strings.Contains(file, "://") {
		return os.ReadFile(file)
	}
	ref, err := open.Ref(ctx, file, opt)
	if err != nil {
		return nil, err
	}
	return dataset.ReadAll(ctx, ref.Store, ref.Key)
}
