package segment

import (
	"github.com/veil-privacy/veil/privacy/accountant"
)

// Releases lists the DP releases the job plans, as accountant events, and
// the accountant that composes them: the noisy cohort sizes and, in DP
// runs, the DP k-means iterations. It reads no data. No events: the job
// releases nothing under DP.
func (c *Config) Releases() ([]accountant.Event, string, error) {
	if err := c.Validate(); err != nil {
		return nil, "", err
	}
	if c.NoisySizes <= 0 {
		return nil, "", nil
	}
	// Cohorts partition the subjects: adding or removing one changes one
	// count by one, so the histogram is one release of sensitivity 1.
	evs := []accountant.Event{{Mechanism: accountant.DiscreteGaussian, Sigma: c.NoisySizes, Sensitivity: 1, Count: 1, Note: "noisy cohort sizes"}}
	acct := "pld"
	if c.Privacy != nil {
		_, ev, _, err := c.Privacy.Plan()
		if err != nil {
			return nil, "", err
		}
		evs = append(evs, ev)
		acct = c.Privacy.Accountant
	}
	return evs, acct, nil
}
