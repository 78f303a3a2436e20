#!/usr/bin/env bash
# Installs the real services the integration tests start: InfluxDB 1.8.10, built from
# source with the Go toolchain (about 2 minutes the first time, then cached in
# $(go env GOPATH)/bin). Idempotent.
set -euo pipefail

gobin="$(go env GOPATH)/bin"
if ! go version -m "$gobin/influxd" 2>/dev/null | grep -q 'github.com/influxdata/influxdb[[:space:]]*v1.8.10'; then
  echo "installing influxd v1.8.10 into $gobin (go install, ~2 min)..."
  go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10
fi
