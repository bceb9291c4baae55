package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/segment"
)

func newSegmentCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "segment",
		Short: "Build cohort segments with k-means",
	}
	cmd.AddCommand(newKMeansCmd(env))
	return cmd
}

type kmeansOptions struct {
	in, init, initMethod string
	k, maxIter, nInit    int
	workers              int
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
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("in")
	cmd.MarkFlagRequired("k")
	return cmd
}

func runKMeans(ctx context.Context, env *Env, o kmeansOptions) error {
	load := func(url string) (*segment.Matrix, error) {
		ref, err := dataset.ParseRef(ctx, url, env.urlOptions())
		if err != nil {
			return nil, err
		}
		return segment.LoadMatrix(ctx, ref)
	}
	t0 := time.Now()
	x, err := load(o.in)
	if err != nil {
		return err
	}
	km := segment.KMeans{K: o.k, MaxIter: o.maxIter, Tol: o.tol, NInit: o.nInit, Seed: o.seed, Workers: o.workers, Init: o.initMethod}
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
