// Package mf holds the numeric kernels of veil's recommendations:
// implicit-feedback matrix factorization under user-level differential
// privacy. Its item factors are trained with DP-SGD (Fit: each subject's
// whole gradient clipped, Gaussian noise from the secure source, Poisson
// sampling of subjects, accounting through privacy/accountant), while each
// subject's own factor is solved from that subject's data and the released
// item factors and never released (Solver: joint DP, the "billboard"
// model).
//
// Beside Fit and the Solver it holds the interaction matrix (Data,
// Builder, ReadCSV), the privacy plan (Config.MakePlan, Plan), the
// checkpoint codec, the ranking kernels (RecommendEach, the AVX2 scoring
// panels), the explainer of a recommendation (Explainer), the evaluation
// metrics (Evaluate) and the privacy audits of a training run
// (AuditPrivacy, AuditWhiteBox). It reads no files and writes none: jobs,
// outputs, model cards and staging are package train's, which imports
// this one. Its dependencies are the standard library, gonum and veil's
// privacy/dp, privacy/accountant and privacy/audit; no object store, no
// Parquet.
package mf
