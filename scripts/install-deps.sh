#!/usr/bin/env bash
# Installs what the tests need, idempotently:
#   - InfluxDB 1.8.10, built from source with the Go toolchain (about 2 minutes the
#     first time, then cached in $(go env GOPATH)/bin);
#   - qemu-user from Debian, to run the 32-bit ARM tests (apt-get; as root or via sudo).
set -euo pipefail

gobin="$(go env GOPATH)/bin"
if ! go version -m "$gobin/influxd" 2>/dev/null | grep -q 'github.com/influxdata/influxdb[[:space:]]*v1.8.10'; then
  echo "installing influxd v1.8.10 into $gobin (go install, ~2 min)..."
  go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10
fi

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v qemu-arm >/dev/null || apt_install qemu-user
