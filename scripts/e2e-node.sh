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
# Go tools to walk. openid-client 6 needs Node.js 20 or newer: the machine's
# node when it is one, or else Node.js itself from the npm registry (the
# node-linux-<arch> package, at a pinned version that npm checks against the
# registry's integrity hash), since Debian 12's nodejs is 18. Debian's nodejs
# and npm are installed first when npm is missing. The directory printed
# holds a link, node, to the Node.js the tests run. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=20.20.2
# Installs go to a temporary directory renamed into place when complete,
# so an interrupted one is never taken for a finished one.
trap 'rm -rf "${ntmp:-}" "${tmp:-}"' EXIT
root=${KEYGATE_E2E_NODE_CACHE:-$HOME/.cache/keygate-e2e-node}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq nodejs npm >/dev/null
fi
node_bin=$(command -v node)
if [ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "e2e-node: node $("$node_bin" --version) is too old and no Node.js 20 package is known for $(uname -m)" >&2; exit 1 ;;
  esac
  nodedir=$root/node-$NODE_VERSION-$arch
  if [ ! -x "$nodedir/node_modules/node-linux-$arch/bin/node" ]; then
    echo "e2e-node: node $("$node_bin" --version) is too old; installing Node.js $NODE_VERSION into $nodedir" >&2
    mkdir -p "$root"
    ntmp=$(mktemp -d "$nodedir.XXXXXX")
    (cd "$ntmp" && npm install --prefix . --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
      "node-linux-$arch@$NODE_VERSION" >&2)
    rm -rf "$nodedir"
    mv -T "$ntmp" "$nodedir"
  fi
  node_bin=$nodedir/node_modules/node-linux-$arch/bin/node
fi

lock=e2e/rp-node/package-lock.json
dir=$root/$(cat e2e/rp-node/package.json "$lock" | sha256sum | cut -c1-16)
if [ ! -f "$dir/.installed" ]; then
  rm -rf "$dir" # an unfinished copy from elsewhere
  echo "installing the Node.js relying party's packages into $dir" >&2
  mkdir -p "$root"
  tmp=$(mktemp -d "$dir.XXXXXX")
  chmod 755 "$tmp"
  cp e2e/rp-node/package.json "$lock" "$tmp/"
  (cd "$tmp" && PATH="$(dirname "$node_bin"):$PATH" npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  touch "$tmp/.installed"
  # Another run may have finished first; either copy is the same.
  mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/.installed" ]
fi
ln -sfn "$node_bin" "$dir/node"
echo "$dir"
