# Sourced by scripts/test.sh: makes KEYGATE_TEST_POSTGRES name a PostgreSQL
# server for the tests of storage/postgres, which fail without one.
#
# A DSN already in KEYGATE_TEST_POSTGRES is used as it is (the role must
# be allowed to create databases). Otherwise this installs Debian's
# postgresql when no initdb is found under /usr/lib/postgresql/*/bin, and
# starts one throwaway cluster for the whole run: initdb into a temporary
# directory (as the postgres user when running as root, since initdb
# refuses root), a server listening only on a Unix socket in that
# directory, without fsync; it is stopped and removed when the calling
# shell exits. The tests give each test a schema of its own on it.

if [ -z "${KEYGATE_TEST_POSTGRES:-}" ]; then
  keygate_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
  if [ ! -x "$(keygate_pg_bin)/initdb" ]; then
    echo "installing: postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  keygate_pg=$(keygate_pg_bin)
  keygate_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/keygate-pg.XXXXXX")
  keygate_pg_as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$keygate_pg_dir"
    keygate_pg_as=(runuser -u postgres --)
  fi
  # The server opens no TCP port (listen_addresses=''): the port number
  # only names its socket file, which lives in this run's own directory,
  # so a fixed one never collides.
  keygate_pg_port=55432
  keygate_pg_stop() {
    (cd "$keygate_pg_dir" && "${keygate_pg_as[@]}" "$keygate_pg/pg_ctl" -D "$keygate_pg_dir/data" -m immediate -w stop >/dev/null 2>&1)
    rm -rf "$keygate_pg_dir"
  }
  trap keygate_pg_stop EXIT
  (
    cd "$keygate_pg_dir"
    "${keygate_pg_as[@]}" "$keygate_pg/initdb" -D "$keygate_pg_dir/data" -U postgres -A trust \
      -E UTF8 --no-locale --no-sync >/dev/null
    "${keygate_pg_as[@]}" "$keygate_pg/pg_ctl" -D "$keygate_pg_dir/data" -l "$keygate_pg_dir/log" -w -t 120 \
      -o "-k $keygate_pg_dir -p $keygate_pg_port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null
  ) || { cat "$keygate_pg_dir/log" 2>/dev/null; exit 1; }
  export KEYGATE_TEST_POSTGRES="host=$keygate_pg_dir port=$keygate_pg_port user=postgres dbname=postgres sslmode=disable"
fi
