// Package access builds a data subject's access report (GDPR Articles 15
// and 22, DSA Article 27): for one pseudonymous subject of a pipeline, its
// consent per purpose with the records that decided it, the runs and
// outputs that hold its data (the erasure-impact lookup), the cohort it is
// in with the cohort's explanation, its recommendations with their
// reasons, and the DP releases it contributed to with their (ε, δ).
//
// It is a steward tool: it reads exact, personal data, and every report is
// written to the pipeline's audit log with who asked for it. A subject who
// asked for erasure gets no report, only the confirmation that it is erased.
package access
