package mf

import (
	"context"
	"errors"
	"math"
	"testing"
)

// The one-run audit catches a trainer that skips the noise while its plan
// claims ε = 1, and passes the real trainer at the same settings.
func TestPrivacyAudit(t *testing.T) {
	d := planted(3000, 300, 6, 15, 3)
	ac := DefaultAuditConfig()
	ac.Canaries, ac.CanaryItems = 500, 5
	cfg := testConfig()
	cfg.Epsilon, cfg.Delta = 1, 1e-5
	plan, err := cfg.MakePlan()
	if err != nil {
		t.Fatal(err)
	}
	broken := cfg
	broken.brokenNoNoise = true
	res, err := AuditPrivacy(context.Background(), d, broken, plan, ac, nil)
	if !errors.Is(err, ErrAuditViolation) || res == nil || !res.Violation {
		t.Fatalf("broken trainer: %+v, %v", res, err)
	}
	t.Logf("broken trainer (claims ε %.3g): %d of %d right, ε ≥ %.3g, MIA AUC %.3f", plan.Epsilon, res.Correct, res.Guesses, res.EpsilonLowerBound, res.MembershipAUC)

	res, err = AuditPrivacy(context.Background(), d, cfg, plan, ac, nil)
	if err != nil || res.Violation || *res.ProvenEpsilon != plan.Epsilon {
		t.Fatalf("real trainer: %+v, %v", res, err)
	}
	t.Logf("real trainer (ε %.3g): %d of %d right, ε ≥ %.3g, MIA AUC %.3f", plan.Epsilon, res.Correct, res.Guesses, res.EpsilonLowerBound, res.MembershipAUC)
	if math.Abs(res.MembershipAUC-0.5) > 0.1 || res.Members == 0 || res.NonMembers == 0 {
		t.Errorf("membership inference AUC %.3f (%d members, %d non-members): want near 0.5 under DP", res.MembershipAUC, res.Members, res.NonMembers)
	}

	// Without privacy the audit finds a lot, and claims no violation.
	np := cfg
	np.Epsilon = math.Inf(1)
	npPlan, _ := np.MakePlan()
	res, err = AuditPrivacy(context.Background(), d, np, npPlan, ac, nil)
	if err != nil || res.ProvenEpsilon != nil || res.EpsilonLowerBound < 1 {
		t.Fatalf("non-private: %+v, %v", res, err)
	}
	t.Logf("non-private: %d of %d right, ε ≥ %.3g, MIA AUC %.3f", res.Correct, res.Guesses, res.EpsilonLowerBound, res.MembershipAUC)
}
