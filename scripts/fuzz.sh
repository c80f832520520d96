#!/usr/bin/env bash
# Runs every fuzz target (or those named: scripts/fuzz.sh FuzzCSRF ...) for a
# short, fixed time (FUZZTIME, default 2s) and fails on a finding. `go test`
# alone runs only the seed corpora in testdata/fuzz; this lets the fuzzer
# look further, a little, every time. A failing input is written to the
# package's testdata/fuzz/<target>/, as `go test -fuzz` does: rerun it
# with `go test -run=<target>/<file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
fuzztime="${FUZZTIME:-2s}"

# Every fuzz target in the tree, as "package target" lines.
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
  sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|./\1 \2|' | sort)

if [ $# -gt 0 ]; then
  targets=$(echo "$targets" | grep -wF "$(printf '%s\n' "$@")" || true)
  [ -n "$targets" ] || { echo "no such fuzz target: $*" >&2; exit 2; }
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# Where `go test -fuzz` keeps what it found interesting, so runs build on
# each other.
cachedir="$(go env GOCACHE)/fuzz/$(go list -m)"
testbin() { echo "$bin/$(echo "$1" | tr './' '_-').test"; }
export -f testbin
export bin

# Each package's test binary is built once, with the fuzzer's
# instrumentation and without debug information, two at a time, and run
# once per target: `go test -fuzz` would link it again for every target.
echo "$targets" | awk 'NF {print $1}' | sort -u |
  xargs -P 2 -I{} bash -c 'go test -c -fuzz=. -ldflags="-s -w" -o "$(testbin {})" {}'

failed=0
while read -r pkg target; do
  [ -n "$pkg" ] || continue
  corpus="$pkg/testdata/fuzz/$target"
  before=$(ls "$corpus" 2>/dev/null | sort || true)
  out="$bin/$target.out"
  if (cd "$pkg" && "$(testbin "$pkg")" -test.run='^$' -test.fuzz="^$target\$" \
    -test.fuzztime="$fuzztime" -test.fuzzcachedir="$cachedir/${pkg#./}") >"$out" 2>&1; then
    echo "ok    $pkg $target"
    continue
  fi
  after=$(ls "$corpus" 2>/dev/null | sort || true)
  if [ "$before" = "$after" ] && grep -qx '    context deadline exceeded' "$out" && ! grep -q -- "--- FAIL: $target/" "$out"; then
    # Go's fuzzing coordinator can report its own -fuzztime deadline as a
    # failure (golang.org/issue/75804, fixed in Go 1.27): no input failed.
    echo "ok    $pkg $target (the fuzzer stopped late; no input failed)"
    continue
  fi
  echo "FAIL  $pkg $target"
  cat "$out"
  failed=1
done <<<"$targets"
exit "$failed"
