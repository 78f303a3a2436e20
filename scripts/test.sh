#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs first. Used by the README and by
# .ci/run. Under CI=true a missing service fails its tests instead of skipping them.
#
#   scripts/test.sh                 everything, with -race
#   scripts/test.sh ./gateway/...   only some packages
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

export PATH="$(go env GOPATH)/bin:$PATH"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
go vet "${pkgs[@]}"
go test -race -count=1 -timeout 20m "${pkgs[@]}"
