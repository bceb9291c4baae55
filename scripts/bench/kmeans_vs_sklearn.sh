#!/usr/bin/env bash
# k-means side by side with scikit-learn (and faiss when installed), in one
# run, on the same data and the same initial centroids:
#   Gaussian blobs N=200,000, D=32, K=64 (sklearn make_blobs, float32) with
#   cluster_std 1 (separated: converges in 2 iterations), 4 and 8
#   (overlapping: all 20 iterations run), 20 iterations at most, tol 0, one
#   init (k-means++ from sklearn, saved to .npy). Three repetitions each;
#   medians reported.
# Installs Debian's python3-sklearn for the benchmark only; veil never
# depends on it. Usage: scripts/bench/kmeans_vs_sklearn.sh [workdir]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
py=/usr/bin/python3
if ! "$py" -c 'import sklearn' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-sklearn python3-numpy >/dev/null
fi
go build -o "$work/veil" ./cmd/veil
# Debian's OpenBLAS is configured here for old CPUs; unset for the
# benchmark's Python alone, as the machine notes advise.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" - "$work" <<'PY'
import json, subprocess, sys, time
import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.datasets import make_blobs
work = sys.argv[1]
import sklearn, threadpoolctl
print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; BLAS threads: {[i['num_threads'] for i in threadpoolctl.threadpool_info()]}")
for std in (1.0, 4.0, 8.0):
    X, _ = make_blobs(n_samples=200_000, n_features=32, centers=64, random_state=0, cluster_std=std)
    X = X.astype(np.float32)
    init, _ = kmeans_plusplus(X, 64, random_state=0)
    np.save(f"{work}/X.npy", X)
    np.save(f"{work}/init.npy", init.astype(np.float32))
    rows = {}
    for rep in range(3):
        for algo in ("lloyd", "elkan"):
            km = KMeans(n_clusters=64, init=init, n_init=1, max_iter=20, tol=0, algorithm=algo)
            t = time.perf_counter(); km.fit(X); dt = time.perf_counter() - t
            rows.setdefault(f"sklearn {algo}", []).append((dt, km.inertia_, km.n_iter_))
        out = subprocess.run([f"{work}/veil", "segment", "kmeans", "--in", f"{work}/X.npy", "--init", f"{work}/init.npy",
                              "--k", "64", "--max-iter", "20", "--tol", "0", "--json"], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        rows.setdefault("veil", []).append((r["seconds"], r["inertia"], r["iterations"]))
    try:
        import faiss
        km = faiss.Kmeans(32, 64, niter=20, verbose=False)
        t = time.perf_counter(); km.train(X, init_centroids=init.astype(np.float32)); dt = time.perf_counter() - t
        D, _ = km.index.search(X, 1)
        rows["faiss"] = [(dt, float(D.sum()), 20)]
    except ImportError:
        pass
    print(f"\ncluster_std {std}")
    print(f"{'run':<16}{'median s':>10}{'inertia':>16}{'iterations':>12}")
    for name, rs in rows.items():
        print(f"{name:<16}{np.median([r[0] for r in rs]):>10.3f}{rs[0][1]:>16.6e}{rs[0][2]:>12}")
    ref = np.median([r[0] for r in rows["sklearn lloyd"]]); vt = np.median([r[0] for r in rows["veil"]])
    ri, vi = rows["sklearn lloyd"][0][1], rows["veil"][0][1]
    print(f"veil / sklearn lloyd time: {vt/ref:.2f}; inertia relative difference {abs(vi-ri)/ri:.2e}")
PY
