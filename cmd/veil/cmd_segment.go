package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset/open"
	"github.com/veil-privacy/veil/segment"
	"github.com/veil-privacy/veil/segment/kmeans"
)

func newSegmentCmd(env *Env) *cobra.Command {
	var configFile, date string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "segment --config FILE --logical-date D",
		Short: "Build cohort segments with k-means and export them for marketing",
		Long: `Run a segmentation job: consent-filtered features per subject (purpose
segmentation), k-means, the cohort floor, profiles that explain each cohort
in words, and exports (Parquet and CSV) of cohort assignments for subjects who
also allow marketing, committed under OUTPUT/dt=D/run=RUN_ID/ with a manifest.
See configs/segment.yaml.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "(or use veil segment kmeans)")
			if err != nil {
				return err
			}
			cfg, err := segment.LoadConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			rep, err := segment.Run(cmd.Context(), cfg, day, env.urlOptions(), env.logger())
			if err != nil {
				return usageIfConfig(err)
			}
			return printSegmentReport(env, rep, asJSON)
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "job file (see configs/segment.yaml)")
	cmd.Flags().StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.AddCommand(newKMeansCmd(env), newPrepareCmd(env), newFitCmd(env), newAssignCmd(env))
	return cmd
}

func newPrepareCmd(env *Env) *cobra.Command {
	var configFile, date, out string
	var shards int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prepare --config FILE --logical-date D --out URL [--shards N]",
		Short: "Write the consent-filtered features of a segmentation job as a prepared table",
		Long: `Build the features of a segmentation job (consent, retention, erasure and
contribution bounding as veil segment does) and write them as a prepared
table under OUT/dt=D: shards part-NNNNN.parquet (subject_features contract),
feature_names.json and prepare_report.json, committed by the manifest.
veil-beam prepare writes the same table on a Beam runner.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			if out == "" {
				return usagef(errors.New("--out is required"))
			}
			cfg, err := segment.LoadConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			rep, err := segment.Prepare(cmd.Context(), cfg, day, out, shards, env.urlOptions(), env.logger())
			if err != nil {
				return usageIfConfig(err)
			}
			if asJSON {
				return printJSON(env, rep)
			}
			fmt.Fprintf(env.Stdout, "prepared %d subjects (%d events, %d sampled down) from %d rows read, %d kept, in %.1fs: %s\n",
				rep.Subjects, rep.EventsUsed, rep.Bounded, rep.Filter.RowsRead, rep.Filter.RowsKept, rep.Seconds, rep.Output)
			return nil
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "segmentation job file (see configs/segment.yaml)")
	cmd.Flags().StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	cmd.Flags().StringVar(&out, "out", "", "URL of the prepared table (the date's partition goes under it)")
	cmd.Flags().IntVar(&shards, "shards", segment.DefaultShards, "files of the table (subjects split by a hash of their token)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// printSegmentReport prints the run's public report: with noisy sizes no
// exact count (those are in the steward report, whose location it names).
func printSegmentReport(env *Env, full *segment.Report, asJSON bool) error {
	rep := full.Public()
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := env.Stdout
	exact := rep == full // Public returns the report itself when it has no noisy sizes
	if exact {
		fmt.Fprintf(w, "segmentation run %s for %s: %d subjects (%d events) from %d rows read\n", rep.RunID, rep.LogicalDate, rep.Subjects, rep.Events, rep.Filter.RowsRead)
	} else {
		fmt.Fprintf(w, "segmentation run %s for %s\n", rep.RunID, rep.LogicalDate)
	}
	if rep.NotDP != "" {
		fmt.Fprintf(w, "%s\n", rep.NotDP)
	}
	if d := rep.DP; d != nil {
		fmt.Fprintf(w, "DP k-means, k=%d: ε %.3g at δ %.4g (%s), %d iterations, noise σ %.3g, clip radius %.4g\n",
			rep.K, d.Epsilon, d.Delta, d.Accountant, d.Iterations, d.Sigma, d.ClipRadius)
		fmt.Fprintf(w, "%d cohorts after the floor on noisy sizes\n", rep.Cohorts)
	} else if exact {
		fmt.Fprintf(w, "k=%d, inertia %.4g after %d iterations, silhouette %.3f; %d cohorts after the floor (%d subjects suppressed)\n",
			rep.K, rep.Inertia, rep.Iterations, rep.Silhouette, rep.Cohorts, rep.Suppressed)
	} else {
		fmt.Fprintf(w, "k=%d after %d iterations; %d cohorts after the floor\n", rep.K, rep.Iterations, rep.Cohorts)
	}
	for _, p := range rep.Profiles {
		size := strconv.Itoa(p.Size)
		if p.NoisySize != nil {
			size = fmt.Sprintf("about %d", *p.NoisySize)
		}
		fmt.Fprintf(w, "  cohort %d, %s subjects: %s\n", p.CohortID, size, p.Explanation)
		if p.Note != "" {
			fmt.Fprintf(w, "    (%s)\n", p.Note)
		}
	}
	if exact {
		fmt.Fprintf(w, "exported %d assignments (not exported: %s) to %s\n", rep.Exported, counts(rep.NotExported), rep.Output)
	} else {
		fmt.Fprintf(w, "exported to %s\n", rep.Output)
	}
	fmt.Fprintf(w, "steward report (exact counts, contributors filter; steward only): %s\n", rep.StewardReport)
	return nil
}

type kmeansOptions struct {
	in, init, initMethod string
	k, maxIter, nInit    int
	workers              int
	minibatch            bool
	batchSize, epochs    int
	tol                  float64
	seed                 uint64
	asJSON               bool
}

// kmeansReport is what veil segment kmeans prints.
type kmeansReport struct {
	N          int     `json:"n"`
	D          int     `json:"d"`
	K          int     `json:"k"`
	Init       string  `json:"init"`
	Inertia    float64 `json:"inertia"`
	Iterations int     `json:"iterations"`
	Converged  bool    `json:"converged"`
	Seconds    float64 `json:"seconds"`
	LoadSecs   float64 `json:"load_seconds"`
	EvalRatio  float64 `json:"distance_evals_vs_brute_force"`
	Workers    int     `json:"workers"`
}

func newKMeansCmd(env *Env) *cobra.Command {
	var o kmeansOptions
	cmd := &cobra.Command{
		Use:   "kmeans --in FILE --k K",
		Short: "Cluster a plain matrix (.npy or Parquet) and print inertia, iterations and time",
		Long: `Cluster the rows of a matrix: a 2-D float32 or float64 .npy file, or Parquet
with one FLOAT or DOUBLE column per dimension. --init FILE gives the initial
centroids (K rows, same format), so that runs can be compared with other
tools from the same start. Prints inertia, iterations and time (--json for
scripts). Time excludes loading.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			return runKMeans(cmd.Context(), env, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "matrix file (required)")
	f.IntVar(&o.k, "k", 0, "number of clusters (required)")
	f.StringVar(&o.init, "init", "", "file with initial centroids")
	f.StringVar(&o.initMethod, "init-method", "k-means++", "k-means++ or k-means|| when --init is not given")
	f.IntVar(&o.maxIter, "max-iter", 300, "iterations")
	f.Float64Var(&o.tol, "tol", 1e-4, "stop when the squared centre shift is at most tol × mean feature variance (0: only on no change)")
	f.IntVar(&o.nInit, "n-init", 1, "restarts, the best kept")
	f.Uint64Var(&o.seed, "seed", 0, "random seed")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "goroutines")
	docDefault(f, "workers", "the number of CPUs")
	f.BoolVar(&o.minibatch, "minibatch", false, "mini-batch k-means streaming a Parquet matrix row group by row group (for data larger than memory)")
	f.IntVar(&o.batchSize, "batch-size", 4096, "points per mini-batch update")
	f.IntVar(&o.epochs, "epochs", 2, "mini-batch passes over the data")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("in")
	cmd.MarkFlagRequired("k")
	return cmd
}

func runKMeans(ctx context.Context, env *Env, o kmeansOptions) error {
	load := func(url string) (*kmeans.Matrix, error) {
		ref, err := open.Ref(ctx, url, env.urlOptions())
		if err != nil {
			return nil, err
		}
		return segment.LoadMatrix(ctx, ref)
	}
	if o.minibatch {
		return runMiniBatch(ctx, env, o)
	}
	t0 := time.Now()
	x, err := load(o.in)
	if err != nil {
		return err
	}
	km := kmeans.KMeans{K: o.k, MaxIter: o.maxIter, Tol: o.tol, NInit: o.nInit, Seed: o.seed, Workers: o.workers, Init: o.initMethod}
	if o.init != "" {
		c, err := load(o.init)
		if err != nil {
			return err
		}
		km.Init, km.Centroids = "given", c
	}
	loaded := time.Now()
	r, err := km.Fit(ctx, x)
	if err != nil {
		return usageIfConfig(err)
	}
	rep := kmeansReport{N: x.N, D: x.D, K: o.k, Init: km.Init, Inertia: r.Inertia, Iterations: r.Iterations, Converged: r.Converged,
		Seconds: r.Duration.Seconds(), LoadSecs: loaded.Sub(t0).Seconds(), Workers: o.workers,
		EvalRatio: float64(r.DistanceEvals) / (float64(r.Iterations+1) * float64(x.N) * float64(o.k))}
	if o.asJSON {
		return json.NewEncoder(env.Stdout).Encode(rep)
	}
	_, err = fmt.Fprintf(env.Stdout, "inertia %.6g after %d iterations (converged %v) in %.3fs on %d×%d, k=%d\n", rep.Inertia, rep.Iterations, rep.Converged, rep.Seconds, x.N, x.D, o.k)
	return err
}

func runMiniBatch(ctx context.Context, env *Env, o kmeansOptions) error {
	ref, err := open.Ref(ctx, o.in, env.urlOptions())
	if err != nil {
		return err
	}
	src, err := segment.OpenParquetMatrix(ctx, ref)
	if err != nil {
		return err
	}
	defer src.Close()
	r, err := (&kmeans.MiniBatch{K: o.k, BatchSize: o.batchSize, Epochs: o.epochs, Seed: o.seed}).FitStream(ctx, src)
	if err != nil {
		return usageIfConfig(err)
	}
	rep := kmeansReport{D: src.Dims(), K: o.k, Init: "mini-batch", Inertia: r.Inertia, Iterations: r.Iterations, Seconds: r.Duration.Seconds(), Workers: 1}
	for _, n := range r.Sizes {
		rep.N += n
	}
	if o.asJSON {
		return json.NewEncoder(env.Stdout).Encode(rep)
	}
	_, err = fmt.Fprintf(env.Stdout, "mini-batch inertia %.6g after %d batches in %.3fs on %d×%d, k=%d\n", rep.Inertia, rep.Iterations, rep.Seconds, rep.N, rep.D, o.k)
	return err
}

func printJSON(env *Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newFitCmd(env *Env) *cobra.Command {
	var configFile, prepared, model string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "fit --config FILE --prepared URL --model URL",
		Short: "Fit k-means on a prepared table and store the model for assign",
		Long: `Fit the job's k-means (kmeans section; k by silhouette with k: auto) on a
prepared table (OUT/dt=D of veil segment prepare or veil-beam prepare) and
write the model (standardization and centroids, JSON) to --model, for
veil segment assign or veil-beam assign.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			if configFile == "" || prepared == "" || model == "" {
				return usagef(errors.New("--config, --prepared and --model are required"))
			}
			cfg, err := segment.LoadConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			ref, err := open.Ref(cmd.Context(), prepared, env.urlOptions())
			if err != nil {
				return err
			}
			m, rep, err := segment.Fit(cmd.Context(), cfg, ref)
			if err != nil {
				return usageIfConfig(err)
			}
			if err := segment.WriteModel(cmd.Context(), model, m, env.urlOptions()); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env, rep)
			}
			fmt.Fprintf(env.Stdout, "k=%d on %d subjects, inertia %.4g after %d iterations: %s\n", rep.K, rep.Subjects, rep.Inertia, rep.Iterations, model)
			return nil
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "segmentation job file (see configs/segment.yaml)")
	cmd.Flags().StringVar(&prepared, "prepared", "", "URL of a prepared table's date (OUT/dt=D)")
	cmd.Flags().StringVar(&model, "model", "", "URL of the model file to write")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newAssignCmd(env *Env) *cobra.Command {
	var configFile, date, prepared, model string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "assign --config FILE --logical-date D --prepared URL --model URL",
		Short: "Assign a prepared table's subjects to the model's cohorts and export them",
		Long: `Assign every subject of a prepared table to its nearest centroid of the model,
apply the cohort floor on the exact sizes (on noisy sizes with
noisy_sizes_sigma), and export the subjects who also allow marketing under
OUTPUT/dt=D/run=RUN_ID (a release): assignments-NNNNN.parquet,
cohort_sizes.json and assign_report.json. The model is exact, so the
assignment is not differentially private and charges no budget; a cohort
with fewer exportable subjects than the floor is withheld; exact counts
and sizes are in the steward report. A job with a privacy section is
refused. veil-beam assign does the same on a Beam runner.`,
		Args: exactArgs(0),
		RunE: runE(env, func(cmd *cobra.Command, args []string) error {
			day, err := jobArgs(configFile, date, "")
			if err != nil {
				return err
			}
			if prepared == "" || model == "" {
				return usagef(errors.New("--prepared and --model are required"))
			}
			cfg, err := segment.LoadConfig(configFile)
			if err != nil {
				return usageIfConfig(err)
			}
			if err := segment.RefusePrivacy(cfg, "assign"); err != nil {
				return usagef(err)
			}
			m, err := segment.ReadModel(cmd.Context(), model, env.urlOptions())
			if err != nil {
				return err
			}
			rep, err := segment.AssignPrepared(cmd.Context(), cfg, day, prepared, m, env.urlOptions(), env.logger())
			if err != nil {
				return usageIfConfig(err)
			}
			if asJSON {
				return printJSON(env, rep)
			}
			fmt.Fprintf(env.Stdout, "assigned %d subjects to %d cohorts (%d suppressed), exported %d (not exported: %s): %s\n",
				rep.Subjects, len(rep.Cohorts), rep.Suppressed, rep.Exported, counts(rep.NotExported), rep.Output)
			return nil
		}),
	}
	cmd.Flags().StringVar(&configFile, "config", "", "segmentation job file (see configs/segment.yaml)")
	cmd.Flags().StringVar(&date, "logical-date", "", "logical date YYYY-MM-DD")
	cmd.Flags().StringVar(&prepared, "prepared", "", "URL of a prepared table's date (OUT/dt=D)")
	cmd.Flags().StringVar(&model, "model", "", "URL of the model (veil segment fit)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
