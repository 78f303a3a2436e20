#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs first. Used by the README and by
# .ci/run. Under CI=true a missing service fails its tests instead of skipping them.
#
#   scripts/test.sh                 everything
#   scripts/test.sh ./gateway/...   only some packages (skips the ARM and build steps)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"

if [ $# -gt 0 ]; then
  go vet "$@"
  exec go test -race -count=1 -timeout 20m "$@"
fi

echo "== vet"
go vet ./...
echo "== cross-compile the binary for the boxes (linux/arm64, linux/arm v7)"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o /dev/null ./cmd/envgate
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -o /dev/null ./cmd/envgate
echo "== 32-bit ARM: core and derivation tests under qemu-arm (unaligned 64-bit atomics, int overflow)"
CGO_ENABLED=0 GOARCH=arm GOARM=7 go test -count=1 -exec qemu-arm \
  ./gateway/reading ./gateway/buffer ./gateway/schedule ./gateway/metrics ./config \
  ./gateway/derive ./gateway/window ./gateway/noise ./gateway/air ./gateway/water ./gateway/replay
echo "== all tests, with the race detector"
go test -race -count=1 -timeout 20m ./...
echo "== date-sensitive tests with the gateway's clock 400 days ahead, then behind (internal/clock)"
for offset in 9600h -9600h; do
  ENVGATE_TEST_CLOCK_OFFSET=$offset go test -tags fakeclock -count=1 -timeout 20m ./internal/clock \
    ./cmd/envgate ./gateway ./gateway/derive ./gateway/influx ./internal/testsvc \
    ./gateway/noise ./gateway/air ./gateway/water ./gateway/replay ./dashboards
done
