// Package jobs runs veil's pipelines for schedulers (cron, Kubernetes
// CronJob, Airflow): a strict YAML spec of steps with dependencies, run for a
// logical date under a lease lock, each step's completion recorded so that a
// crashed run resumes where it stopped, a latest pointer switched only when
// every step committed, budget spends keyed by a stable run id so that a
// retry never spends twice, and Prometheus metrics for a Pushgateway or a
// node_exporter textfile. Each kind of step (pseudonymize, segment, train)
// is one type implementing one contract (work, in step.go), which the
// runner, the release path, the plan, the lineage recorder and the metrics
// use without knowing the kind.
package jobs
