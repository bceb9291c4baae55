# Sourced by scripts/test.sh and the benchmarks: installs versitygw (the real
# S3 server used in tests, Apache-2.0) if needed, starts it on a free loopback
# port with a temporary folder, exports VEIL_TEST_S3_ENDPOINT and test
# credentials, and stops it when the sourcing script exits.
VGW_VERSION=v1.8.0

vgw_start() {
  local gobin vgw stamp log attempt port
  gobin=$(go env GOBIN)
  [ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
  vgw=$gobin/versitygw
  stamp=$gobin/.versitygw-$VGW_VERSION
  if [ ! -x "$vgw" ] || [ ! -f "$stamp" ]; then
    echo "== installing versitygw $VGW_VERSION"
    go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION"
    touch "$stamp"
  fi
  VGW_DATA=$(mktemp -d)
  log=$VGW_DATA.log
  VGW_PID=
  trap vgw_stop EXIT
  export AWS_ACCESS_KEY_ID=veil-test-access
  export AWS_SECRET_ACCESS_KEY=veil-test-secret-key-0123456789
  export AWS_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true  # never ask instance metadata: tests stay on loopback
  # Try a few ports: another process may hold one.
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
      "$vgw" --port "127.0.0.1:$port" posix "$VGW_DATA" >"$log" 2>&1 &
    VGW_PID=$!
    for _ in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        export VEIL_TEST_S3_ENDPOINT=http://127.0.0.1:$port
        echo "== versitygw $VGW_VERSION on $VEIL_TEST_S3_ENDPOINT"
        return 0
      fi
      kill -0 "$VGW_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$VGW_PID" 2>/dev/null || true
    wait "$VGW_PID" 2>/dev/null || true
    VGW_PID=
  done
  echo "versitygw did not start:" >&2
  cat "$log" >&2
  return 1
}

vgw_stop() {
  if [ -n "${VGW_PID:-}" ]; then
    kill "$VGW_PID" 2>/dev/null || true
    wait "$VGW_PID" 2>/dev/null || true
  fi
  rm -rf "${VGW_DATA:-/nonexistent}" "${VGW_DATA:-/nonexistent}.log"
}
