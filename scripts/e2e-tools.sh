# Installs the relying parties the end-to-end suite runs as real processes,
# and exports where they are. Source it (test.sh does): `. scripts/e2e-tools.sh`.
#
#   KEYGATE_E2E_OAUTH2_PROXY   oauth2-proxy, built with `go install`
#
# Tools are kept outside the repository, in KEYGATE_E2E_CACHE (default
# ~/.cache/keygate-e2e), one folder per version, so a rerun installs nothing;
# a variable that is already set is left as it is.
# An install goes to a temporary folder that is renamed into place: an
# interrupted one is never taken for a finished one. `go test ./e2e` without
# these variables installs into the same cache itself.

KEYGATE_E2E_OAUTH2_PROXY_VERSION=v7.15.6

keygate_e2e_install_oauth2_proxy() {
  local cache dir
  [ -n "${KEYGATE_E2E_OAUTH2_PROXY:-}" ] && return 0
  cache="${KEYGATE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate-e2e}"
  dir="$cache/oauth2-proxy@$KEYGATE_E2E_OAUTH2_PROXY_VERSION"
  if [ ! -x "$dir/oauth2-proxy" ]; then
    echo "e2e-tools: installing oauth2-proxy $KEYGATE_E2E_OAUTH2_PROXY_VERSION into $cache" >&2
    mkdir -p "$cache" || return 1
    rm -rf "$dir.tmp" &&
      GOBIN="$dir.tmp" go install "github.com/oauth2-proxy/oauth2-proxy/v7@$KEYGATE_E2E_OAUTH2_PROXY_VERSION" &&
      rm -rf "$dir" && mv "$dir.tmp" "$dir" || return 1
  fi
  export KEYGATE_E2E_OAUTH2_PROXY="$dir/oauth2-proxy"
}

keygate_e2e_install_oauth2_proxy
