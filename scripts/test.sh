#!/usr/bin/env bash
# Runs veil's test suite the way CI does, on a fresh machine or this one:
#   1. installs the real S3 server versitygw v1.8.0 (Apache-2.0) with go install,
#      unless that version is already installed;
#   2. starts it on 127.0.0.1 with a temporary folder and test credentials;
#   3. checks gofmt, runs go vet, go test -race over every package (the S3
#      conformance suite among them, which may not skip under CI=true), and
#      short fuzz runs of every fuzz target;
#   4. vets and tests the Beam module (beam/, its own go.mod) on Prism;
#   5. stops the server it started.
# Usage: scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/versitygw.sh
vgw_start

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 "$@" ./...

echo "== fuzz (short)"
# Every Fuzz function, 10 seconds each.
grep -rl --include='*_test.go' --exclude-dir=beam '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    go test -run '^$' -fuzz "^$fn\$" -fuzztime 10s "$pkg"
  done
done

echo "== beam module: go vet, go test -race on Prism"
(cd beam && go vet ./... && go test -race -count=1 "$@" ./...)
