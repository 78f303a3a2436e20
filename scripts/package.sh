#!/usr/bin/env bash
# Builds the envgate Debian packages for amd64, arm64 and armhf (ARMv7, GOARM=7) from
# this checkout, with nfpm v2.44.2 (packaging/nfpm.yaml); docs/install.md installs them.
#
#   scripts/package.sh [VERSION]
#
# VERSION is a Debian version (starts with a digit; letters, digits, . + ~). Without
# it the version comes from `git describe --tags`: v1.2.0 gives 1.2.0, 5 commits past
# it gives 1.2.0+5.g<hash>, no tag at all gives 0.0.0+git<commits>.g<hash>, and a
# tree with uncommitted changes adds .dirty.
#
#   ENVGATE_DIST=DIR        where the packages go (default dist/, which git ignores)
#   ENVGATE_ARCHES="amd64"  build only these (of amd64 arm64 armhf)
#
# nfpm is taken from PATH if it is v2.44.2 (scripts/install-deps.sh installs it),
# otherwise run with `go run`, which is slower (the v2.48.0 CLI cannot be built here).
set -euo pipefail
cd "$(dirname "$0")/.."

nfpm_version=v2.44.2
dist=${ENVGATE_DIST:-dist}
arches=${ENVGATE_ARCHES:-amd64 arm64 armhf}

version=${1:-}
if [ -z "$version" ]; then
  if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "package.sh: not a git checkout; give the version: scripts/package.sh 1.2.0" >&2
    exit 2
  fi
  hash=$(git rev-parse --short=12 HEAD)
  if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    d=${d#v}
    if [[ $d =~ ^(.*)-([0-9]+)-g[0-9a-f]+$ ]]; then
      version="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g$hash"
    else
      version=$d
    fi
  else
    version="0.0.0+git$(git rev-list --count HEAD).g$hash"
  fi
  if ! git diff --quiet HEAD -- 2>/dev/null; then
    case $version in *+*) version="$version.dirty" ;; *) version="$version+dirty" ;; esac
  fi
fi
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "package.sh: version $version: want a Debian version: a digit, then letters, digits, . + ~" >&2
  exit 2
fi

PATH="$(go env GOPATH)/bin:$PATH"
if go version -m "$(command -v nfpm)" 2>/dev/null | grep -q "github.com/goreleaser/nfpm/v2[[:space:]]*$nfpm_version"; then
  nfpm=(nfpm)
else
  nfpm=(go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version")
fi

mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
stage="$dist/.stage"
rm -rf "$stage"
mkdir -p "$stage/examples"
cp config/examples/*.yaml "$stage/examples/"
for f in systemd/*.rules; do
  [ ! -e "$f" ] || cp "$f" "$stage/examples/"
done
# The binary's lower bound on plausible times (internal/clock): readings stamped before
# it come from a box whose clock is not set yet. The commit time, so a rebuild of the
# same commit is the same binary.
build_time=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
for arch in $arches; do
  case $arch in
  amd64) goarch=amd64 goarm= nfpm_arch=amd64 ;;
  arm64) goarch=arm64 goarm= nfpm_arch=arm64 ;;
  armhf) goarch=arm goarm=7 nfpm_arch=arm7 ;;
  *)
    echo "package.sh: unknown architecture $arch (want amd64, arm64 or armhf)" >&2
    exit 2
    ;;
  esac
  bin="$stage/$arch/envgate"
  echo "== envgate $version for $arch"
  CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
    go build -trimpath -ldflags "-s -w -X main.version=$version -X github.com/envgate/envgate/internal/clock.buildTime=$build_time" -o "$bin" ./cmd/envgate
  out="$dist/envgate_${version}_${arch}.deb"
  rm -f "$out"
  ENVGATE_VERSION=$version ENVGATE_NFPM_ARCH=$nfpm_arch ENVGATE_BINARY=$bin ENVGATE_EXAMPLES=$stage/examples \
    "${nfpm[@]}" package -f packaging/nfpm.yaml -p deb -t "$out" >/dev/null
  echo "$out"
done
rm -rf "$stage"
