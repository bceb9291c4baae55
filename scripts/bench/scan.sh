#!/usr/bin/env bash
# Consent-filtered scan benchmark (issue #19): `veil segment prepare`,
# `veil datasets filter` and `veil train prepare` against DuckDB computing
# the same things in one SQL query each, side by side in one run.
# On a generated shop (default: 100k subjects, 20k items, 90 days, ~10M
# events), veil and DuckDB run alternately RUNS times each, as whole
# processes; the script prints the median wall time, CPU time (user+sys)
# and peak RSS of each and the ratios veil / DuckDB, then checks that both
# found the same subjects with the same features.
#
# The DuckDB side is a separate Go module (scripts/bench/duckdb, duckdb-go
# from the Go module proxy, needs cgo) so that veil never depends on DuckDB;
# its SQL is in scripts/bench/duckdb/main.go (`duckbench sql`,
# `duckbench filter-sql` and `duckbench interactions-sql` print it).
#
# Usage: scripts/bench/scan.sh [workdir]
#   SUBJECTS=20000 scripts/bench/scan.sh   quick run on a smaller shop
#   RUNS=3         pairs of runs (default 5)
#   DAYS=90        days of events (default 90)
#   JOBS=segment   only segment prepare; JOBS=filter only datasets filter;
#                  JOBS=train only train prepare (default: all three)
# Needs ~250 MB of disk per 100k subjects, python3 and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=${1:-$(mktemp -d)}
subjects=${SUBJECTS:-100000}
runs=${RUNS:-5}
days=${DAYS:-90}
jobs=${JOBS:-both}
date=2026-11-27
mkdir -p "$work"
work=$(cd "$work" && pwd)
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
go build -o "$work/veil" ./cmd/veil
(cd scripts/bench/duckdb && go build -o "$work/duckbench" .)

shop=$work/shop-$subjects-$days
if [ ! -f "$shop/events/_manifest.json" ]; then
  rm -rf "$shop"
  "$work/veil" --log-format json generate --out "$shop" --subjects "$subjects" --items 20000 --days "$days" --session-rate 0.2 >/dev/null 2>&1
fi
read -r events groups <<<"$("$work/veil" datasets inspect --json "$shop/events" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["rows"], m["row_groups"])')"
printf 'events: %s/events\noutput: %s/output\nkmeans: {k: "8", n_init: 2, seed: 1}\ncohort_floor: {min_size: 100, small: merge}\n' "$shop" "$work" > "$work/segment.yaml"
echo "input: $events events in $groups row groups, $(du -sh "$shop/events" | cut -f1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # prints "WALL CPU KIB" of a command, its output discarded; stops the script when it fails
  if ! /usr/bin/time -f "%e %U %S %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/stderr.out"; then
    echo "failed: $*" >&2
    tail -5 "$work/stderr.out" >&2
    exit 1
  fi
  tail -1 "$work/time.out" | awk '{print $1, $2 + $3, $4}'
}

# compare NAME LABEL: prints the medians of the runs recorded in $work/times.NAME
# (lines "ENGINE WALL CPU KIB") and the ratios veil / DuckDB.
compare() {
  python3 - "$work/times.$1" "$events" "$2" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, kib = line.split()
    runs.setdefault(name, []).append((float(wall), float(cpu), int(kib)))
events, label = int(sys.argv[2]), sys.argv[3]
print(f"== {label}")
med = {n: [statistics.median(x[i] for x in r) for i in range(3)] for n, r in runs.items()}
for n in ("veil", "duckdb"):
    w, c, k = med[n]
    print(f"{n:7s} median of {len(runs[n])}: {w:6.2f} s wall, {c:6.2f} s CPU, {k/1024:5.0f} MiB peak RSS, {events/w/1e6:5.2f} M events/s")
(vw, vc, vk), (dw, dc, dk) = med["veil"], med["duckdb"]
print(f"veil / DuckDB: {vw/dw:.2f}x wall, {vc/dc:.2f}x CPU, {vk/dk:.2f}x peak RSS")
pairs = [v[0] / d[0] for v, d in zip(runs["veil"], runs["duckdb"])]
print("veil / DuckDB wall per alternating pair: " + " ".join(f"{p:.2f}" for p in pairs) + f" (median {statistics.median(pairs):.2f})")
PY
}

# veil segment prepare against DuckDB's feature query (consumed row by row).
if [ "$jobs" = both ] || [ "$jobs" = segment ]; then
  : > "$work/times.segment"
  for i in $(seq "$runs"); do
    rm -rf "$work/prep"
    echo "veil $(measure "$work/veil" --log-format json segment prepare --config "$work/segment.yaml" --logical-date "$date" --out "$work/prep")" >> "$work/times.segment"
    echo "duckdb $(measure "$work/duckbench" run -shop "$shop" -date "$date")" >> "$work/times.segment"
    tail -2 "$work/times.segment" | sed "s/^/  segment prepare, run $i: /"
  done
  compare segment "segment prepare"
  "$work/duckbench" check -shop "$shop" -date "$date" -prepared "$work/prep/dt=$date"
fi

# veil datasets filter (the consent filter alone: rows and subjects kept)
# against DuckDB counting the same.
if [ "$jobs" = both ] || [ "$jobs" = filter ]; then
  : > "$work/times.filter"
  for i in $(seq "$runs"); do
    echo "veil $(measure "$work/veil" --log-format json datasets filter "$shop/events" --purposes segmentation --logical-date "$date" --json)" >> "$work/times.filter"
    echo "duckdb $(measure "$work/duckbench" filter -shop "$shop" -date "$date")" >> "$work/times.filter"
    tail -2 "$work/times.filter" | sed "s/^/  datasets filter, run $i: /"
  done
  compare filter "datasets filter"
  veil_counts=$("$work/veil" --log-format json datasets filter "$shop/events" --purposes segmentation --logical-date "$date" --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("rows_kept", r["rows_kept"], "subjects_kept", r["subjects_kept"])')
  duck_counts=$("$work/duckbench" filter -shop "$shop" -date "$date")
  echo "veil: $veil_counts; DuckDB: $duck_counts"
  [ "$veil_counts" = "$duck_counts" ] && echo "same: yes" || { echo "DuckDB and veil disagree" >&2; exit 1; }
fi

# veil train prepare against DuckDB's interactions query, both writing
# Parquet sorted by subject and item.
if [ "$jobs" = both ] || [ "$jobs" = train ]; then
  printf 'events: %s/events\noutput: %s/models\ninteractions: {event_weights: {view: 1, add_to_cart: 1, purchase: 1}, window_days: 90}\nmodel: {epsilon: 8, delta: 1.0e-6}\nbudget: {ledger: %s/ledger, epsilon: 20, delta: 1.0e-5, period: month}\n' "$shop" "$work" "$work" > "$work/train.yaml"
  : > "$work/times.train"
  for i in $(seq "$runs"); do
    rm -rf "$work/iprep" "$work/duck.parquet"
    echo "veil $(measure "$work/veil" --log-format json train prepare --config "$work/train.yaml" --logical-date "$date" --out "$work/iprep")" >> "$work/times.train"
    echo "duckdb $(measure "$work/duckbench" interactions -shop "$shop" -date "$date" -out "$work/duck.parquet")" >> "$work/times.train"
    tail -2 "$work/times.train" | sed "s/^/  train prepare, run $i: /"
  done
  compare train "train prepare"
  "$work/duckbench" check-interactions -shop "$shop" -date "$date" -prepared "$work/iprep/dt=$date"
fi
