// Package report writes a pipeline run as a static web site that people
// open in a browser: HTML, CSS and inline SVG drawn by veil, with no
// script and nothing fetched from the network, so that it can be opened
// from disk or served from a static-website bucket.
//
// A site is built for one audience. The steward build holds the run, the
// privacy ledger, the audit log's status, the model card with its steward
// appendix and the cohorts with their exact sizes; the marketing build
// holds only what the marketing role may read: releases (the public model
// card, cohort profiles with noisy sizes, export files and datasheets) and
// the run's public figures, never a number of a steward report.
//
// Collect gathers a Site from a completed pipeline run; Write renders it.
// Every figure has a table beside it that says the same in text.
package report
