#!/usr/bin/env bash
# Scale-out benchmark (issue: Scale-out). On the same ~10M-event shop
# (100k subjects, 90 days: 90 row groups), side by side in one run:
#  - Prepare: `veil segment prepare` (one machine) against `veil-beam
#    prepare` on Prism (Beam's embedded runner, in-process workers on this
#    machine's cores): wall time, peak RSS, Beam's overhead per row group,
#    and whether the two tables are byte-identical;
#  - Assign: `veil segment assign` against `veil-beam assign`, on the
#    prepared table with the same model;
#  - Prepare for training: `veil train prepare` against `veil-beam
#    prepare-interactions`, and whether the tables are byte-identical.
# Usage: scripts/bench/beam.sh [workdir]   (needs ~1 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
go build -o "$work/veil" ./cmd/veil
(cd beam && go build -o "$work/veil-beam" ./cmd/veil-beam)

measure() { # prints "SECONDS KIB" of a command, its output discarded
  /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}

if [ ! -f "$work/shop/events/_manifest.json" ]; then
  "$work/veil" --log-format json generate --out "$work/shop" --subjects 100000 --items 20000 --days 90 --session-rate 0.2 >/dev/null 2>&1
fi
rows=$("$work/veil" datasets inspect --json "$work/shop/events" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["rows"], m["row_groups"])')
set -- $rows
events=$1 groups=$2
printf 'events: %s/shop/events\noutput: %s/out\nkmeans: {k: "8", n_init: 2, seed: 1}\ncohort_floor: {min_size: 100, small: merge}\n' "$work" "$work" > "$work/segment.yaml"
echo "input: $events events in $groups row groups; $(nproc) cores"

rm -rf "$work/prep-one" "$work/prep-beam"
read -r s1 m1 <<<"$(measure "$work/veil" --log-format json segment prepare --config "$work/segment.yaml" --logical-date 2026-11-27 --out "$work/prep-one")"
read -r s2 m2 <<<"$(measure "$work/veil-beam" prepare --config "$work/segment.yaml" --logical-date 2026-11-27 --out "$work/prep-beam")"
identical() { # prints yes when two prepared tables have the same shards
  python3 - "$work" "$1" "$2" <<'PY'
import json, re, sys
w, x, y = sys.argv[1:]
def shards(d):
    m = json.load(open(f"{w}/{d}/dt=2026-11-27/_manifest.json"))
    return {re.sub(r"-[0-9a-f]{16}\.parquet$", "", f["key"]): f["sha256"] for f in m["files"] if f["key"].startswith("part-")}
a, b = shards(x), shards(y)
print("yes" if a == b and a else "NO")
PY
}
same=$(identical prep-one prep-beam)
python3 - "$s1" "$m1" "$s2" "$m2" "$groups" "$events" "$same" <<'PY'
import sys
s1, m1, s2, m2, groups, events, same = sys.argv[1:]
s1, s2, m1, m2, groups, events = float(s1), float(s2), int(m1), int(m2), int(groups), int(events)
print(f"prepare, one machine (veil segment prepare): {s1:6.2f} s, {m1/1024:7.0f} MiB peak RSS, {events/s1/1e6:.2f} M events/s")
print(f"prepare, Beam on Prism (veil-beam prepare):  {s2:6.2f} s, {m2/1024:7.0f} MiB peak RSS, {events/s2/1e6:.2f} M events/s")
print(f"  Beam/one machine: {s2/s1:.2f}x time, {m2/m1:.2f}x memory; Beam overhead {(s2-s1)/groups*1000:.0f} ms per row group; tables byte-identical: {same}")
PY

"$work/veil" --log-format json segment fit --config "$work/segment.yaml" --prepared "$work/prep-one/dt=2026-11-27" --model "$work/model.json" >/dev/null 2>&1
read -r a1 n1 <<<"$(measure "$work/veil" --log-format json segment assign --config "$work/segment.yaml" --logical-date 2026-11-27 --prepared "$work/prep-one/dt=2026-11-27" --model "$work/model.json")"
read -r a2 n2 <<<"$(measure "$work/veil-beam" assign --config "$work/segment.yaml" --logical-date 2026-11-27 --prepared "$work/prep-one/dt=2026-11-27" --model "$work/model.json")"
echo "assign, one machine: $a1 s, $((n1/1024)) MiB peak RSS; Beam on Prism: $a2 s, $((n2/1024)) MiB peak RSS"

printf 'events: %s/shop/events\noutput: %s/models\nmodel: {epsilon: .inf}\n' "$work" "$work" > "$work/train.yaml"
rm -rf "$work/ix-one" "$work/ix-beam"
read -r i1 r1 <<<"$(measure "$work/veil" --log-format json train prepare --config "$work/train.yaml" --logical-date 2026-11-27 --out "$work/ix-one")"
read -r i2 r2 <<<"$(measure "$work/veil-beam" prepare-interactions --config "$work/train.yaml" --logical-date 2026-11-27 --out "$work/ix-beam")"
echo "interactions, one machine: $i1 s, $((r1/1024)) MiB peak RSS; Beam on Prism: $i2 s, $((r2/1024)) MiB peak RSS; tables byte-identical: $(identical ix-one ix-beam)"
