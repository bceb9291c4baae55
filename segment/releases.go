package segment

import (
	"github.com/veil-privacy/veil/privacy/accountant"
)

// Releases lists the DP releases the job plans, as accountant events, and
// the accountant that composes them: in DP runs, the noisy cohort sizes
// and the DP k-means iterations. It reads no data. No events: the job
// releases nothing under DP (a run without privacy: releases exact
// centres, so noise on its sizes protects no one and is not charged).
func (c *Config) Releases() ([]accountant.Event, string, error) {
	if err := c.Validate(); err != nil {
		return nil, "", err
	}
	if c.Privacy == nil {
		return nil, "", nil
	}
	_, ev, _, err := c.Privacy.Plan()
	if err != nil {
		return nil, "", err
	}
	// Cohorts partition the subjects: adding or removing one changes one
	// count by one, so the histogram is one release of sensitivity 1.
	return []accountant.Event{{Mechanism: accountant.DiscreteGaussian, Sigma: c.NoisySizes, Sensitivity: 1, Count: 1, Note: "noisy cohort sizes"}, ev},
		c.Privacy.Accountant, nil
}
