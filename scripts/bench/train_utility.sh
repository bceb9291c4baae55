#!/usr/bin/env bash
# The privacy-utility table of DP training with a public product catalog
# (issue 16): Recall@20 of veil train mf on
#   1. UCI Online Retail, pseudonymized, with the shop's catalog that
#      veil pseudonymize writes beside the events (the data set publishes no
#      product list, so the catalog is derived from the transaction file);
#   2. a generated shop of 50k subjects with its catalog;
# for popularity, veil's non-private model (ε inf) and DP at ε 1, 2, 4, 8.
# Every DP run charges a throwaway ledger with a large budget. Each run has
# fresh DP noise: on Online Retail a figure moves between runs by up to
# 0.01 and more (a few items in or out of everyone's top 20 decide it):
# repeat a point before reading much into it.
#
# Usage: scripts/bench/train_utility.sh [workdir [shared-dir]]
#   shared-dir holds data/online_retail.csv.gz (default: ../shared beside
#   the repository, or $VEIL_SHARED).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
work=${1:-$(mktemp -d)}
shared=${2:-${VEIL_SHARED:-$repo/../shared}}
# A git worktree keeps ../shared beside the main checkout.
if [ ! -d "$shared" ]; then
  main=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  [ -n "$main" ] && shared=$(dirname "$main")/../shared
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
go build -o "$work/veil" ./cmd/veil
veil() { "$work/veil" --log-format json --log-level warn "$@"; }
epsilons=(inf 1 2 4 8)

# recall FILE prints the model's and popularity's Recall@20 of a report.
recall() {
  sed -n 's/.*"model":{[^}]*"recall_at_20":\([0-9.e-]*\).*"popularity":{[^}]*"recall_at_20":\([0-9.e-]*\).*/\1 \2/p' "$1"
  echo # the report files end without a newline
}

# bench NAME EVENTS CATALOG [train mf flags...] trains at every ε.
bench() {
  local name=$1 events=$2 catalog=$3
  shift 3
  for e in "${epsilons[@]}"; do
    rm -rf "$work/$name-ledger"
    veil train mf --in "$events" --catalog "$catalog" --epsilon "$e" --seed 1 \
      --baselines=false --ledger "$work/$name-ledger" --budget-epsilon 1000 --json "$@" \
      | tr -d ' \n' >"$work/$name-$e.json"
  done
}

echo "== Online Retail" >&2
retail=$shared/data/online_retail.csv.gz
if [ -f "$retail" ]; then
  key=$work/retail.key
  [ -f "$key" ] || { head -c 32 /dev/urandom >"$key"; chmod 600 "$key"; }
  rm -rf "$work/retail"
  veil pseudonymize --in "$retail" --out "$work/retail/events" --id-column CustomerID --key-file "$key" >&2
  bench retail "$work/retail/events" "$work/retail/catalog" \
    --no-consent-public-data --event-types purchase --holdout-last 5
else
  echo "no $retail: Online Retail skipped (give the shared directory as the second argument)" >&2
fi

echo "== generated shop, 50k subjects" >&2
if [ ! -f "$work/shop/catalog/_manifest.json" ]; then
  rm -rf "$work/shop"
  veil generate --out "$work/shop" --subjects 50000 --items 20000 --days 30 >&2
fi
# The generated shop has consent and erasure tables: they apply (its
# subjects who allow personalization, as of the shop's last day).
bench shop "$work/shop/events" "$work/shop/catalog" \
  --logical-date 2026-11-27 --event-types purchase --holdout-last 5

echo
echo "Recall@20 (veil train mf --seed 1 --holdout-last 5 --event-types purchase --catalog CATALOG --epsilon E)"
printf "%-22s %10s" "data" "popularity"
for e in "${epsilons[@]}"; do printf " %8s" "ε $e"; done
echo
for name in retail shop; do
  [ -s "$work/$name-8.json" ] || continue
  label=$([ $name = retail ] && echo "Online Retail" || echo "generated 50k shop")
  read -r _ pop < <(recall "$work/$name-inf.json")
  printf "%-22s %10.4f" "$label" "$pop"
  for e in "${epsilons[@]}"; do
    read -r r _ < <(recall "$work/$name-$e.json")
    printf " %8.4f" "$r"
  done
  echo
done
