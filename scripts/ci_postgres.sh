#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the tuning-storage tests; print its URL on stdout.
#   url=$(scripts/ci_postgres.sh start DIR)   # installs Debian's postgresql when it is missing
#   scripts/ci_postgres.sh stop DIR
# Trust authentication, listening on 127.0.0.1 only, on a free port; run as user postgres when
# started by root (PostgreSQL refuses to run as root).
set -euo pipefail
action=${1:?start or stop}
root=${2:?a folder for the cluster}

bindir() {
  local found
  found=$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] && dirname "$(readlink -f "$found")"
}

as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    if [ -z "$(bindir)" ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
      # Debian's package starts its own cluster on port 5432; the tests use their own.
      pg_ctlcluster --help >/dev/null 2>&1 && (pg_lsclusters -h | awk '{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done) >&2
    fi
    bin=$(bindir)
    mkdir -p "$root"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$root"
    port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_server "$bin/initdb" -D "$root/data" -U mmbench -A trust --no-sync -E UTF8 >&2
    as_server "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $root -F" start >&2
    echo "postgresql://mmbench@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(bindir)
    as_server "$bin/pg_ctl" -D "$root/data" -m immediate -w stop >&2 || true
    rm -rf "$root"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
