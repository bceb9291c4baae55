// Package release is veil's one release path (DESIGN.md, "What leaves
// veil"): every entry point that publishes something derived from
// subjects' data plans its DP releases as accountant events, checks and
// spends the budget once for the whole run, and writes what only the data
// steward may read (exact counts, diagnostics, evaluation on private data,
// the contributors filter) as a steward report in the state store, apart
// from the releases.
package release
