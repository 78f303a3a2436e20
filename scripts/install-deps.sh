#!/usr/bin/env bash
# Installs what the tests need, idempotently:
#   - InfluxDB 1.8.10, built from source with the Go toolchain (about 2 minutes the
#     first time, then cached in $(go env GOPATH)/bin);
#   - qemu-user from Debian, to run the 32-bit ARM tests (apt-get; as root or via sudo);
#   - python3-pymodbus (3.0 on bookworm) with pyserial and pyserial-asyncio, and socat,
#     for the Modbus RTU/TCP tests against a real slave on a pty pair (apt-get);
#   - mosquitto 2.x (2.0.11 on bookworm, with mosquitto_passwd) for the MQTT tests (apt-get).
#     Debian's package may also start a system broker on port 1883; the tests start their
#     own on free ports and do not use it.
#   - prometheus (2.42 on bookworm, with promtool) and prometheus-alertmanager (0.25, with
#     amtool) for the alert rule tests and the end-to-end alerting test (apt-get). Debian's
#     packages may also start system services on :9090 and :9093; the tests start their
#     own on free ports and do not use them.
#   - nats-server (2.9.10 on bookworm: MQTT 3.1.1 on JetStream, clustered) for the fleet
#     tests against a 3-node broker cluster (internal/testsvc/nats.go; apt-get). Debian's
#     package may also start a system server on :4222; the tests do not use it.
#   - victoria-metrics (1.79 on bookworm) for BenchmarkStorage, the central store's bytes
#     per point (apt-get). Debian's package may start a system server on :8428; the
#     benchmark starts its own.
#   - chromium (Debian's, /usr/bin/chromium) for the status page test, which drives it
#     headless through chromedp (apt-get).
#   - nfpm v2.44.2, built with `go install` into $(go env GOPATH)/bin, for
#     scripts/package.sh (the v2.48.0 CLI cannot be built from the module proxy here);
#     the package test also needs dpkg-deb and dpkg (always on Debian) and
#     systemd-sysusers, systemd-tmpfiles and systemctl from Debian's systemd (apt-get).
set -euo pipefail

gobin="$(go env GOPATH)/bin"
if ! go version -m "$gobin/influxd" 2>/dev/null | grep -q 'github.com/influxdata/influxdb[[:space:]]*v1.8.10'; then
  echo "installing influxd v1.8.10 into $gobin (go install, ~2 min)..."
  go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10
fi
if ! go version -m "$gobin/nfpm" 2>/dev/null | grep -q 'github.com/goreleaser/nfpm/v2[[:space:]]*v2.44.2'; then
  echo "installing nfpm v2.44.2 into $gobin (go install)..."
  go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.44.2
fi

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v qemu-arm >/dev/null || apt_install qemu-user
# The Modbus slave runs under Debian's /usr/bin/python3, so check the Debian packages
# (dpkg -s), not whatever python3 is first on PATH. python3-pymodbus only recommends
# python3-serial-asyncio and does not pull in python3-serial, which its servers need.
modbus_pkgs=()
for p in python3-pymodbus python3-serial python3-serial-asyncio socat; do
  dpkg -s "$p" >/dev/null 2>&1 || modbus_pkgs+=("$p")
done
[ "${#modbus_pkgs[@]}" -eq 0 ] || apt_install "${modbus_pkgs[@]}"
# mosquitto lives in /usr/sbin, which is not on every user's PATH: ask dpkg.
dpkg -s mosquitto >/dev/null 2>&1 || apt_install mosquitto
prom_pkgs=()
for p in prometheus prometheus-alertmanager; do
  dpkg -s "$p" >/dev/null 2>&1 || prom_pkgs+=("$p")
done
[ "${#prom_pkgs[@]}" -eq 0 ] || apt_install "${prom_pkgs[@]}"
dpkg -s nats-server >/dev/null 2>&1 || apt_install nats-server
dpkg -s victoria-metrics >/dev/null 2>&1 || apt_install victoria-metrics
# The status page test drives Debian's headless Chromium (cmd/envgate/statuspage_test.go).
dpkg -s chromium >/dev/null 2>&1 || apt_install chromium
# systemd-analyze (verify the unit, expand its syscall filter sets; cmd/envgate/notify_test.go)
# with the stock units the verify runs against, and systemd-sysusers/systemd-tmpfiles for
# the package test (packaging/), which runs the maintainer scripts against a scratch root.
# No running systemd is needed.
dpkg -s systemd >/dev/null 2>&1 || apt_install systemd
