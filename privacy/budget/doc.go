// Package budget is the privacy budget ledger. Every DP release spends
// budget against a named dataset; the ledger lives in the object store
// beside the data as append-only, hash-chained JSON records, one object per
// record, created with exclusive writes (S3 If-None-Match, a hard link on
// files) so that two concurrent jobs can never both spend the last of a
// budget. A job asks the ledger before it reads any data and is refused when
// its planned spend would pass the configured (ε, δ) for the period.
package budget
