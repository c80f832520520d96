#!/usr/bin/env bash
# Runs every test keygate has: vet, unit, storage conformance, and the
# end-to-end suite against the built binary (stock OIDC clients, and headless
# Chromium with virtual security keys). Installs what the tests need on a
# fresh Debian machine with Go: a C compiler for SQLite's cgo driver, and
# Debian's chromium and haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# The browser tests drive Debian's Chromium with a virtual authenticator.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The replica tests put Debian's haproxy in front of three keygates.
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export CGO_ENABLED=1
# The Go release go.mod's toolchain line names; the go command fetches it
# from the module proxy even where the machine's Go is set to build with
# itself (GOTOOLCHAIN=local; see README).
export GOTOOLCHAIN=go1.26.10
go vet ./...
./scripts/vulncheck.sh
# The relying parties the end-to-end suite runs, kept in caches outside
# the repository: openid-client on Node, which e2e-node.sh provides, and
# oauth2-proxy, which the suite installs itself (e2e/oauth2proxy_test.go).
KEYGATE_E2E_NODE=$(./scripts/e2e-node.sh); export KEYGATE_E2E_NODE
. ./scripts/postgres.sh
go test -count=1 ./...
# Every benchmark once, so one that no longer runs (a hop that moved, a
# page that changed) fails here rather than when someone measures.
go test -count=1 -run '^$' -bench . -benchtime 1x ./...
# The packages where goroutines share state (group commit, checkpointing,
# caches, the fosite adapter) once more under the race detector.
go test -race -count=1 ./storage/... ./server/oidc/... ./server/session/...
# Every kill action against requests in flight, and finishes racing with
# one passkey answer, under the race detector.
go test -race -count=1 -run '^(TestKillActionsRaceRequestsInFlight|TestWebAuthnConcurrentFinish)$' ./server/
# Every fuzz target for a few seconds (plain go test ran their corpora).
./scripts/fuzz.sh
