#!/usr/bin/env bash
# Privacy layer and DP core benchmarks. Prints:
#  - the consent index (1M subjects): build time, records/s, bytes per subject;
#  - a consent-filtered scan of ~10M events: events/s;
#  - veil datasets filter end to end (PII guard, index, filter): wall time, peak RSS;
#  - veil pseudonymize on the full UCI Online Retail file (from ../shared/data);
#  - the DP core: RDP for 100k steps, PLD for 10k steps, secure Gaussian noise.
# Usage: scripts/bench/privacy.sh [workdir]   (needs ~500 MB of disk)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
go build -o "$work/veil" ./cmd/veil
measure() { /usr/bin/time -f "%e s wall, %M KiB peak RSS" "$@" 2>&1 >/dev/null | tail -1; }

if [ ! -f "$work/shop1m/events/_manifest.json" ]; then
  rm -rf "$work/shop1m"
  echo "generate 1M subjects, ~10M events: $(measure "$work/veil" --log-format json generate --out "$work/shop1m" --subjects 1000000 --items 20000 --days 30 --session-rate 0.06)"
fi
echo "datasets filter (PII guard + consent index + filter), 10M events: $(measure "$work/veil" --log-format json datasets filter "$work/shop1m/events" --purposes segmentation --logical-date 2026-11-27)"
VEIL_BENCH_SHOP=$work/shop1m go test ./privacy/ -run '^$' -bench 'BenchmarkConsentIndex|BenchmarkFilteredScan' -benchtime 3x -count 1

retail=../shared/data/online_retail.csv.gz
if [ -f "$retail" ]; then
  key=$work/retail.key
  head -c 32 /dev/urandom >"$key" && chmod 600 "$key"
  rm -rf "$work/retail"
  echo "pseudonymize Online Retail (541,909 rows): $(measure "$work/veil" --log-format json pseudonymize --in "$retail" --out "$work/retail/events" --id-column CustomerID --key-file "$key")"
  "$work/veil" --log-format json pseudonymize --in "$retail" --out "$work/retail2/events" --id-column CustomerID --key-file "$key" --json
fi

go test ./privacy/accountant/ ./privacy/dp/ -run '^$' -bench 'BenchmarkRDP100kSteps|BenchmarkPLD10kSteps|BenchmarkGaussianSecure' -benchtime 5x -count 1
