package segment

import "fmt"

// WithheldCohort is a cohort kept out of an export's assignments: fewer of
// its subjects may be exported (an exact count, after the marketing
// consent filter) than the cohort floor. The floor itself may have been
// decided on noisy sizes, or on sizes that count subjects who do not allow
// marketing; the export is subject-level personal data outside the DP
// guarantee, so the floor is enforced again on what is actually exported.
// Withheld cohorts are listed in the steward report only.
type WithheldCohort struct {
	CohortID int    `json:"cohort_id"`
	Exported int64  `json:"exported_subjects"` // exact: steward only
	Reason   string `json:"reason"`
}

// WithholdSmall returns the cohorts whose exact number of exportable
// subjects (exported[c] for cohort c) is below minSize: their rows must be
// dropped from the export.
func WithholdSmall(exported []int64, minSize int) []WithheldCohort {
	var out []WithheldCohort
	for c, n := range exported {
		if n < int64(minSize) {
			out = append(out, WithheldCohort{CohortID: c, Exported: n,
				Reason: fmt.Sprintf("%d of its subjects may be exported (they allow marketing), fewer than the cohort floor of %d", n, minSize)})
		}
	}
	return out
}

// withheldSet returns the ids of withheld cohorts as a set.
func withheldSet(w []WithheldCohort) map[int64]bool {
	s := map[int64]bool{}
	for _, c := range w {
		s[int64(c.CohortID)] = true
	}
	return s
}
