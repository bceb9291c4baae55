# Sourced by scripts/test.sh: installs Debian's chromium package, the
# headless browser of veil report's browser test (cmd/veil TestReport),
# unless a chromium is already on PATH. The test skips without one, except
# under CI=true, where it fails.
chromium_install() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  echo "== installing chromium (apt-get)"
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
