// Package privacy makes sure veil only processes what a subject agreed to,
// for the purposes they agreed to, for as long as allowed. It holds the
// policy file (purposes, their IAB TCF v2.2 mapping, the columns each may
// read, retention), the consent index with TC string decoding and GPC/CCPA
// opt-outs, erasure, the filter that every job's reads go through with its
// report of what was dropped and why, and the PII guard.
//
// Sub-packages hold pseudonymization (privacy/pseudonym), the DP mechanisms
// (privacy/dp), the accountants (privacy/accountant) and the budget ledger
// (privacy/budget).
package privacy
