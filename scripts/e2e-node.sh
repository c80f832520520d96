#!/usr/bin/env bash
# Installs the Node.js relying party's packages (e2e/rp-node/package-lock.json:
# openid-client and what it needs) and prints the directory that holds
# them; the e2e tests read it from KEYGATE_E2E_NODE:
#
#   KEYGATE_E2E_NODE=$(./scripts/e2e-node.sh); export KEYGATE_E2E_NODE
#
# The packages go to a cache outside the work tree, one directory per
# lockfile (~/.cache/keygate-e2e-node/<sha256 of package*.json>, or under
# KEYGATE_E2E_NODE_CACHE), so a fresh clone with the same lockfile installs
# nothing and needs no network, and the tree holds no node_modules for the
# Go tools to walk. Needs Node.js 20 or newer; installs Debian's nodejs and
# npm when node is missing. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq nodejs npm >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "e2e-node: node $(node --version) is too old: openid-client 6 needs Node.js 20 or newer" >&2
  exit 1
fi

lock=e2e/rp-node/package-lock.json
root=${KEYGATE_E2E_NODE_CACHE:-$HOME/.cache/keygate-e2e-node}
dir=$root/$(cat e2e/rp-node/package.json "$lock" | sha256sum | cut -c1-16)
if [ ! -f "$dir/.installed" ]; then
  rm -rf "$dir" # an unfinished copy from elsewhere
  echo "installing the Node.js relying party's packages into $dir" >&2
  mkdir -p "$root"
  tmp=$(mktemp -d "$dir.XXXXXX")
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  cp e2e/rp-node/package.json "$lock" "$tmp/"
  (cd "$tmp" && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  touch "$tmp/.installed"
  # Another run may have finished first; either copy is the same.
  mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/.installed" ]
fi
echo "$dir"
