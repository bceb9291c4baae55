#!/usr/bin/env bash
# Training figures of the closing note, in one run:
# 0. the whole training job (configs/train.yaml) on the 10M-event shop of
#    issue #23, wall time, peak memory and seconds by phase;
# 1. throughput on the issue's shop (50k subjects, 20k items, 2M
#    interactions, d = 32), DP and non-private side by side (go test -bench),
#    then the scoring kernel's GFLOP/s and the subject solve beside the code
#    they replaced;
# 2. quality on a generated shop (planted taste groups; 50k subjects, 20k
#    items, 30 days) through the training job: Recall@20 at ε 1, 2, 4, 8
#    against the non-private model and popularity (the privacy-utility curve),
#    and the job's seconds by phase;
# 3. Recall@20 on UCI Online Retail (pseudonymized, synthetic consent for
#    every customer, purchases as interactions, the last 20% by time held out).
# Usage: scripts/bench/train.sh [workdir]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/veil" ./cmd/veil
veil() { "$work/veil" --log-format json --log-level warn "$@"; }

echo "== 0. the training job on the issue's shop (#23): 10M events, 100k subjects, 20k items"
# configs/train.yaml as shipped (evaluation, the non-private baseline and
# recommendations with reasons on), on a shop that veil generate makes;
# RUNS runs (default 3), the median wall time, the peak RSS and each run's
# seconds by phase. SKIP_JOB=1 skips it (it needs ~1 GB of disk).
if [ "${SKIP_JOB:-0}" != 1 ]; then
  shop=$work/shop100k
  [ -d "$shop/events" ] || veil generate --out "$shop" --subjects 100000 --items 20000 --days 90 --session-rate 0.2 >/dev/null
  sed -e "s#veil-demo/shop#$shop#g; s#veil-demo/out#$work/job/out#; s#veil-demo/ledger#$work/job/ledger#" configs/train.yaml >"$work/job.yaml"
  for run in $(seq "${RUNS:-3}"); do
    rm -rf "$work/job"
    /usr/bin/time -f "%e %M" -o "$work/job-time-$run" "$work/veil" --log-format json --log-level warn \
      train --config "$work/job.yaml" --logical-date 2026-11-27 >/dev/null
    read -r secs rss <"$work/job-time-$run"
    phases=$(cat "$work"/job/out/_steward/train/dt=2026-11-27/run=*/steward_report*.json | tr -d ' \n' | grep -o '"seconds_by_phase":{[^}]*}' || true)
    echo "run $run: $secs s, peak RSS $((rss / 1024)) MiB, $phases"
    echo "$secs" >>"$work/job-secs"
  done
  sort -n "$work/job-secs" | awk '{a[NR]=$1} END {print "job median:", a[int((NR+1)/2)], "s"}'
  rm -f "$work/job-secs"
fi

echo "== 1. throughput (ns/op is one training run: q 0.4, 2 epochs = 5 steps)"
go test -run '^$' -bench '^BenchmarkFit$' -benchtime 3x ./train/mf | tee "$work/bench.txt" | grep Benchmark
awk '/BenchmarkFit\/nonprivate/ {np=$3} /BenchmarkFit\/dp/ {dp=$3} END {printf "DP / non-private time: %.2f\n", dp/np}' "$work/bench.txt"

echo "== 1b. scoring and top-k (2,400 subjects x 20,000 items x d 32; before: the float64 path per subject), and the subject solve"
go test -run '^$' -bench '^(BenchmarkScore|BenchmarkSolve)$' -benchtime 3x ./train/mf | tee "$work/bench-score.txt" | grep Benchmark

echo "== 2. quality on a generated shop"
rm -rf "$work/shop" "$work/out" "$work/ledger"
veil generate --out "$work/shop" --subjects 50000 --items 20000 --days 30 >/dev/null
cat >"$work/train.yaml" <<YAML
events: $work/shop/events
output: $work/out/models
model: {epsilon: 8, accountant: pld}
evaluation: {holdout_last: 2, baselines: true, curve: true}
budget: {ledger: $work/ledger, epsilon: 40, delta: 1.0e-5, period: month}
YAML
/usr/bin/time -f "job: %e s, max RSS %M KiB" "$work/veil" --log-format json --log-level warn train --config "$work/train.yaml" --logical-date 2026-11-27
cat "$work"/out/_steward/train/dt=2026-11-27/run=*/steward_report*.json | tr -d ' \n' | grep -o '"seconds_by_phase":{[^}]*}' || true

echo "== 3. Online Retail"
retail=../shared/data/online_retail.csv.gz
if [ ! -f "$retail" ]; then echo "no $retail: skipped"; exit 0; fi
key=$work/retail.key
[ -f "$key" ] || { head -c 32 /dev/urandom >"$key"; chmod 600 "$key"; }
rm -rf "$work/retail"
veil pseudonymize --in "$retail" --out "$work/retail/events" --id-column CustomerID --key-file "$key" >/dev/null
veil generate consent --events "$work/retail/events" --out "$work/retail" --purposes personalization --recorded-at 2010-11-01 >/dev/null
cat >"$work/retail-train.yaml" <<YAML
events: $work/retail/events
output: $work/retail/out
interactions: {event_weights: {purchase: 1}, window_days: 400}
model: {epsilon: 8, accountant: pld}
evaluation: {holdout_last: 0, holdout_fraction: 0.2, baselines: true, curve: true}
budget: {ledger: $work/retail/ledger, epsilon: 40, delta: 1.0e-5, period: total}
YAML
veil train --config "$work/retail-train.yaml" --logical-date 2011-12-09
