#!/usr/bin/env bash
# The real-data check of segmentation on the UCI Online Retail data set
# (../shared/data/online_retail.csv.gz): pseudonymize it, grant synthetic
# consent to every customer (the data set has no consent records; never do
# this with real customers), and run a segmentation job at the last day of
# the data. Prints the silhouette, k and the cohort profiles.
# Usage: scripts/bench/online_retail.sh [workdir]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
retail=../shared/data/online_retail.csv.gz
[ -f "$retail" ] || { echo "no $retail" >&2; exit 1; }
go build -o "$work/veil" ./cmd/veil
key=$work/retail.key
[ -f "$key" ] || { head -c 32 /dev/urandom >"$key"; chmod 600 "$key"; }
rm -rf "$work/retail"
"$work/veil" --log-format json pseudonymize --in "$retail" --out "$work/retail/events" --id-column CustomerID --key-file "$key"
"$work/veil" --log-format json generate consent --events "$work/retail/events" --out "$work/retail" \
  --purposes segmentation,marketing,personalization --recorded-at 2010-11-01
cat >"$work/retail-segment.yaml" <<YAML
events: $work/retail/events
output: $work/retail/out
features: {category_buckets: 16, max_events_per_subject: 2000, seed: 1}
kmeans: {k: auto, k_min: 3, k_max: 8, n_init: 4, max_iter: 200, tol: 1.0e-4, seed: 1}
cohort_floor: {min_size: 100, small: merge}
YAML
"$work/veil" --log-format json segment --config "$work/retail-segment.yaml" --logical-date 2011-12-09
