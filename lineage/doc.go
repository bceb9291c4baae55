// Package lineage will hold OpenLineage events and transports, the audit
// log, model cards and erasure impact queries. It is empty until the lineage
// issue lands; nothing here pretends to work.
package lineage
