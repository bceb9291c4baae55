// Package lineage records what veil did, for data stewards: OpenLineage
// 2-0-2 run events with standard and veil's own facets, delivered to the
// object store (JSON lines beside the outputs), to an HTTP endpoint
// (Marquez-compatible, with a spool that never loses an event) or the
// console; and the audit log, an append-only hash chain of who ran what on
// which data for which purposes.
package lineage
