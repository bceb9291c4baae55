#!/usr/bin/env bash
# Runs veil's test suite the way CI does, on a fresh machine or this one:
#   1. installs the real S3 server versitygw v1.8.0 (Apache-2.0) with go install,
#      unless that version is already installed;
#   2. starts it on 127.0.0.1 with a temporary folder and test credentials;
#   3. runs go vet, go test -race over every package (the S3 conformance suite
#      among them, which may not skip under CI=true), and short fuzz runs;
#   4. stops the server it started.
# Usage: scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

VGW_VERSION=v1.8.0
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
vgw=$gobin/versitygw
stamp=$gobin/.versitygw-$VGW_VERSION
if [ ! -x "$vgw" ] || [ ! -f "$stamp" ]; then
  echo "== installing versitygw $VGW_VERSION"
  go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION"
  touch "$stamp"
fi

data=$(mktemp -d)
log=$data.log
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$data" "$log"
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=veil-test-access
export AWS_SECRET_ACCESS_KEY=veil-test-secret-key-0123456789
export AWS_REGION=us-east-1
# Try a few loopback ports: another process may hold one.
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
    "$vgw" --port "127.0.0.1:$port" posix "$data" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break 2; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
if [ -z "$pid" ]; then
  echo "versitygw did not start:" >&2
  cat "$log" >&2
  exit 1
fi
export VEIL_TEST_S3_ENDPOINT=http://127.0.0.1:$port
echo "== versitygw $VGW_VERSION on $VEIL_TEST_S3_ENDPOINT"

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
go test -run '^$' -fuzz '^FuzzEventsParquet$' -fuzztime 15s ./dataset/
