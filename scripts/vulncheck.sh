#!/usr/bin/env bash
# Checks keygate's code, every module it links and the Go standard library it
# is built with against the Go vulnerability database, and fails when a known
# vulnerability is reachable from keygate's code (govulncheck exits 3).
#
# It needs nothing but the Go module proxy: the database is the
# golang.org/x/vulndb module, whose data/osv folder holds every advisory as
# OSV JSON; its indexdb command turns that folder into a database govulncheck
# reads from disk. govulncheck, indexdb and the database are cached outside
# the repository (KEYGATE_VULNCHECK_CACHE, default ~/.cache/keygate-vulncheck),
# so a rerun only does the check itself.
#
# To take newer advisories, set VULNDB_VERSION to what
# `go list -m golang.org/x/vulndb@master` prints. The check runs with the Go
# toolchain GOTOOLCHAIN names (go1.26.10 unless set), whose standard library
# is what it checks.
set -euo pipefail
cd "$(dirname "$0")/.."

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.26.10}"
cache="${KEYGATE_VULNCHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate-vulncheck}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

govulncheck="$cache/govulncheck@$GOVULNCHECK_VERSION/govulncheck"
if [ ! -x "$govulncheck" ]; then
  echo "vulncheck: installing govulncheck $GOVULNCHECK_VERSION"
  GOBIN="$(dirname "$govulncheck")" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi

# The database is built into a temporary folder and renamed into place, so an
# interrupted build is never taken for a finished one.
db="$cache/vulndb@$VULNDB_VERSION"
if [ ! -f "$db/index/db.json" ]; then
  echo "vulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
  src="$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src/data/osv" ] || { echo "vulncheck: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; exit 1; }
  GOBIN="$cache/indexdb@$VULNDB_VERSION" go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
  rm -rf "$db.tmp"
  "$cache/indexdb@$VULNDB_VERSION/indexdb" -vulns "$src/data/osv" -out "$db.tmp"
  mv "$db.tmp" "$db"
fi

advisories="$(find "$db/ID" -name 'GO-*.json' | wc -l)"
newest="$(find "$db/ID" -name 'GO-*.json' -printf '%f\n' | sort -V | tail -n 1)"
echo "vulncheck: $(go env GOVERSION) and keygate's modules against golang.org/x/vulndb@$VULNDB_VERSION" \
  "($advisories advisories, the newest ${newest%.json}), with govulncheck $GOVULNCHECK_VERSION"
# verbose: also list the packages and modules checked, and the advisories
# that affect a package keygate imports but no function it calls.
"$govulncheck" -db "file://$db" -show verbose ./...
