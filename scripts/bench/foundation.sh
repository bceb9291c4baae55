#!/usr/bin/env bash
# Foundation benchmarks (issue: Foundation). Prints:
#  - veil generate: wall time and peak RSS for 2M and 10M events of the same
#    100k subjects (18 and 90 days; bounded memory means the peaks are close);
#  - veil datasets scan: the same for a full scan of each;
#  - go test -bench: projected-column scan of the 10M-event dataset from
#    file:// and from versitygw on loopback, side by side in one run.
# Usage: scripts/bench/foundation.sh [workdir]   (needs ~1 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
go build -o "$work/veil" ./cmd/veil

measure() { /usr/bin/time -f "%e s wall, %M KiB peak RSS" "$@" 2>&1 >/dev/null | tail -1; }

for n in 2 10; do
  days=$((n * 9))
  rm -rf "$work/shop$n"
  echo "generate ~${n}M events (100000 subjects, $days days): $(measure "$work/veil" --log-format json generate --out "$work/shop$n" --subjects 100000 --items 20000 --days "$days" --session-rate 0.2)"
  echo "  events written: $("$work/veil" datasets inspect --json "$work/shop$n/events" | grep -m1 '"rows"')"
done
for n in 2 10; do
  echo "scan ${n}M events: $(measure "$work/veil" datasets scan "$work/shop$n/events")"
done

. scripts/lib/versitygw.sh
vgw_start
VEIL_BENCH_DATA=$work/shop10 go test ./dataset/ -run '^$' -bench 'BenchmarkScan(File|S3)$' -benchtime 5x -count 1
