// Package train runs veil's training jobs on the kernels of package
// train/mf: it loads the consented interactions (events through privacy's
// filters, prepared tables, CSV and Parquet files, the product catalog),
// plans and spends the job's DP releases, fits and evaluates the model
// (RunExperiment, the privacy-utility curve), recommends, and writes the
// outputs (item factors in Parquet and Arrow, recommendations with their
// reasons, the non-personalized list), the model card and the steward
// report, committed all or nothing. It also holds the privacy audit jobs
// (RunAudit, RunWhiteBoxAudit) and the staging API of the Beam module
// (PrepareInteractions, InteractionDecoder, the interactions shards).
package train
