#!/usr/bin/env bash
# DP k-means utility on a generated shop (issue 22): for ε in 0.5, 1, 2, 4
# and 8, one veil segment run of configs/segment-dp.yaml's settings (k = 6,
# clip radius 1.5, noisy sizes σ 5, floor 50, the default number of
# iterations) and prints
#   cohorts   cohorts in the release after the floor on noisy sizes (of k);
#   norm obj  DP k-means objective ÷ non-private k-means' on the same
#             scaled, clipped features (steward report; 1 is as good);
#   silh      silhouette of the DP cohorts on those features (steward report);
#   seconds   the run's wall time (features, DP k-means, the non-private
#             comparison, exports).
# The shop is `veil generate --subjects 100000 --items 20000 --days 90
# --session-rate 0.2` (62,117 consented subjects), generated once under
# WORKDIR/shop and reused. DP noise comes from the secure source, so
# figures move a little from run to run; RUNS=3 runs each ε three times.
# Usage: scripts/bench/dp_kmeans.sh [workdir]
#   VEIL=path      use this veil binary instead of building ./cmd/veil
#   SUBJECTS=N     generate a smaller shop (iterating; the issue's is 100000)
#   EPSILONS="1 4" the ε to run
#   EXPLAIN=1      also print each cohort's noisy size and explanation
#   CATALOG=0      leave catalog: out of the job (a veil from before the
#                  segment job had it rejects the key)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
subjects=${SUBJECTS:-100000}
epsilons=${EPSILONS:-0.5 1 2 4 8}
runs=${RUNS:-1}
catalog=${CATALOG:-1}
veil=${VEIL:-}
if [ -z "$veil" ]; then
  veil=$work/veil
  go build -o "$veil" ./cmd/veil
fi
shop=$work/shop$subjects
if [ ! -f "$shop/events/_manifest.json" ]; then
  rm -rf "$shop"
  "$veil" --log-format json generate --out "$shop" --subjects "$subjects" --items 20000 --days 90 --session-rate 0.2 >/dev/null 2>&1
fi
echo "shop: $shop ($subjects subjects generated); veil: $veil"
printf '%-6s %-4s %-8s %-9s %-7s %-8s %s\n' "ε" run cohorts "norm obj" silh seconds "clipped"
for eps in $epsilons; do
  for run in $(seq 1 "$runs"); do
    dir=$work/runs/eps$eps-$run
    rm -rf "$dir" && mkdir -p "$dir"
    cat >"$dir/job.yaml" <<EOF
events: $shop/events
output: $dir/out
features: {category_buckets: 32, max_events_per_subject: 1000}
kmeans: {k: "6", n_init: 4, seed: 1}
cohort_floor: {min_size: 50, small: merge}
noisy_sizes_sigma: 5
privacy: {epsilon: $eps, delta: 1.0e-6, clip_radius: 1.5, accountant: pld}
budget: {ledger: $dir/ledger, epsilon: 100, delta: 1.0e-5, period: month}
EOF
    [ "$catalog" = 0 ] || echo "catalog: $shop/catalog" >>"$dir/job.yaml"
    "$veil" --log-format json segment --config "$dir/job.yaml" --logical-date 2026-11-27 --json >"$dir/report.json" 2>"$dir/log.json"
    steward=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steward_report"])' "$dir/report.json")
    python3 - "$dir/report.json" "${steward#file://}" "$eps" "$run" <<'PY'
import glob, json, sys
rep = json.load(open(sys.argv[1]))
st = json.load(open(glob.glob(sys.argv[2] + "/steward_report-*.json")[0]))
dp = st.get("dp", {})
print(f"{sys.argv[3]:<6} {sys.argv[4]:<4} {rep['cohorts']}/{rep['k']:<6} {dp.get('normalized_objective', 0):<9.3f} "
      f"{st.get('silhouette', float('nan')):<7.3f} {rep['seconds']:<8.1f} {dp.get('subjects_clipped', 0)} of {st['subjects']}")
import os
if os.environ.get("EXPLAIN"):
    for p in rep["profiles"]:
        print(f"    cohort {p['cohort_id']}, about {p.get('noisy_size')}: {p['explanation']}")
PY
  done
done
