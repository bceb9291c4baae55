// Package jobs will hold the runner of veil's scheduled jobs: pipeline specs,
// run ids and logical dates, locks, atomic commits, retries and metrics.
// It is empty until the jobs issue lands; nothing here pretends to work.
package jobs
