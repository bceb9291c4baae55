package privacy

import (
	"errors"
	"strings"
	"testing"
)

// A release without differential privacy needs the steward's explicit
// switch in the policy file; the built-in policy refuses it.
func TestNonPrivateReleaseNeedsTheStewardsSwitch(t *testing.T) {
	if err := DefaultPolicy().AllowNonPrivate("a model trained with ε = ∞"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "non_private: allow") {
		t.Errorf("built-in policy: %v", err)
	}
	base := "version: 1\ntcf: {vendor_id: 1}\npurposes: {personalization: {tcf_purposes: [6], columns: [subject_id, event_time, item_id], retention_days: 30}}\n"
	for _, tc := range []struct {
		doc     string
		allowed bool
	}{
		{base, false},
		{base + "releases: {non_private: deny}\n", false},
		{base + "releases: {non_private: allow}\n", true},
	} {
		p, err := ParsePolicy("policy.yaml", []byte(tc.doc))
		if err != nil {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		if err := p.AllowNonPrivate("x"); (err == nil) != tc.allowed {
			t.Errorf("%q: %v", tc.doc, err)
		}
	}
	if _, err := ParsePolicy("policy.yaml", []byte(base+"releases: {non_private: yes}\n")); !errors.Is(err, ErrPolicy) {
		t.Errorf("non_private: yes: %v", err)
	}
}
