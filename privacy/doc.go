// Package privacy will hold consent and purposes, pseudonymization, the PII
// guard, minimization and retention, and (in sub-packages) the DP mechanisms,
// accountants and the privacy budget ledger. It is empty until the privacy
// layer and DP core issues land; nothing here pretends to work.
package privacy
