#!/usr/bin/env bash
# A private PostgreSQL server for the tests of the postgres sink (and bench/sinks.sh): its own
# data directory (target/pg), its own port (55432), a role `weir` with a random password
# (scram-sha-256 over TCP on 127.0.0.1; the unix socket in the data directory trusts local
# users, for the script's own administration). Nothing of a system-wide cluster is touched.
#
#   scripts/postgres.sh start     initdb once, start unless running; prints `export` lines:
#                                 WEIR_PG_URL (no password in it), WEIR_PG_PASSWORD,
#                                 WEIR_PG_ADMIN (a psql connection string for the superuser)
#   scripts/postgres.sh env       the same lines, without starting anything
#   scripts/postgres.sh stop      stop it (fast: open sessions are ended)
#   scripts/postgres.sh restart   stop and start again (the tests restart it mid-stream)
#   scripts/postgres.sh status    exit 0 when it runs
#
# Settings: WEIR_PG_DIR (default target/pg), WEIR_PG_PORT (default 55432), WEIR_PG_BIN (the
# directory of initdb and pg_ctl; default the newest /usr/lib/postgresql/*/bin). Run as root,
# the server runs as the `postgres` user (PostgreSQL refuses to run as root), or as a `weirpg`
# system user created for it when there is none. When that user cannot reach the data directory
# (a clone under /root), the data lives in /var/tmp/weir-pg-<hash> and target/pg links to it.
# Idempotent: quick when the server is up. This is a test server: fsync is off.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
DIR=${WEIR_PG_DIR:-target/pg}
case "$DIR" in /*) ;; *) DIR="$REPO/$DIR" ;; esac
PORT=${WEIR_PG_PORT:-55432}

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    if [ -n "${WEIR_PG_BIN:-}" ]; then echo "$WEIR_PG_BIN"; return; fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$newest" ] && [ -x "$newest/pg_ctl" ]; then echo "$newest"; return; fi
    if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
    echo ""
}

BIN=$(find_bin)
install_server() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "PostgreSQL (initdb, pg_ctl) is not installed and there is no apt-get: install PostgreSQL 15 and set WEIR_PG_BIN to its bin directory"
        exit 1
    fi
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    say "installing PostgreSQL (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null; }
    BIN=$(find_bin)
    [ -n "$BIN" ] || { say "PostgreSQL installed, but no pg_ctl found; set WEIR_PG_BIN"; exit 1; }
}

# The operating-system user the server runs as: this one, or (as root) postgres / weirpg.
OS_USER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then
        OS_USER=postgres
    else
        id weirpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin weirpg
        OS_USER=weirpg
    fi
fi
as_server() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u "$OS_USER" -- "$@"); else "$@"; fi
}

# Where the data really is: DIR, or (root, DIR out of the server user's reach) a directory in
# /var/tmp that DIR links to.
data_dir() {
    if [ -L "$DIR" ]; then readlink -f "$DIR"; return; fi
    if [ -d "$DIR" ] || [ "$(id -u)" -ne 0 ]; then echo "$DIR"; return; fi
    mkdir -p "$(dirname "$DIR")"
    if as_server test -x "$(dirname "$DIR")"; then echo "$DIR"; return; fi
    local hash
    hash=$(echo -n "$DIR" | sha256sum | cut -c1-12)
    local real="/var/tmp/weir-pg-$hash"
    mkdir -p "$real"
    chown "$OS_USER" "$real"
    chmod 700 "$real"
    ln -s "$real" "$DIR"
    echo "$real"
}

running() { [ -n "$BIN" ] && [ -f "$1/PG_VERSION" ] && as_server "$BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# The unix socket lives in the data directory unless its path is too long for a socket name.
socket_dir() { if [ ${#1} -lt 80 ]; then echo "$1"; else echo /tmp; fi; }

password_file() { echo "$1/weir-password"; }

print_env() {
    local data=$1 pw=""
    [ -f "$(password_file "$data")" ] && pw=$(cat "$(password_file "$data")")
    echo "export WEIR_PG_URL='postgres://weir@127.0.0.1:$PORT/weir'"
    echo "export WEIR_PG_PASSWORD='$pw'"
    echo "export WEIR_PG_ADMIN='host=$(socket_dir "$data") port=$PORT user=postgres dbname=postgres'"
    echo "export WEIR_PG_DIR='$DIR'"
    echo "export WEIR_PG_PORT='$PORT'"
}

start() {
    [ -n "$BIN" ] || install_server
    local data
    data=$(data_dir)
    if [ ! -f "$data/PG_VERSION" ]; then
        say "initdb in $data (port $PORT, running as $OS_USER)"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown "$OS_USER" "$data"
        chmod 700 "$data"
        as_server "$BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$data.initdb.log" 2>&1 \
            || { cat "$data.initdb.log" >&2; say "initdb failed"; exit 1; }
        rm -f "$data.initdb.log"
        as_server tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/postgres.sh: a private test server
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$(socket_dir "$data")'
fsync = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
logging_collector = on
log_directory = 'log'
EOF
    fi
    if ! running "$data"; then
        as_server "$BIN/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $PORT" -w -t 60 start >/dev/null \
            || { tail -n 20 "$data/server.log" >&2 || true; say "the server did not start (log: $data/server.log)"; exit 1; }
    fi
    # The test role and database, once (a random password, kept beside the data).
    if [ ! -s "$(password_file "$data")" ]; then
        local pw
        pw="weir-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        local sql="DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'weir') THEN
                CREATE ROLE weir LOGIN CREATEDB PASSWORD '$pw';
            ELSE
                ALTER ROLE weir LOGIN CREATEDB PASSWORD '$pw';
            END IF; END \$\$;"
        as_server "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(socket_dir "$data")" -p "$PORT" -U postgres -d postgres -c "$sql" >/dev/null
        if ! as_server "$BIN/psql" -X -tA -h "$(socket_dir "$data")" -p "$PORT" -U postgres -d postgres \
            -c "SELECT 1 FROM pg_database WHERE datname = 'weir'" | grep -q 1; then
            as_server "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(socket_dir "$data")" -p "$PORT" -U postgres -d postgres \
                -c "CREATE DATABASE weir OWNER weir" >/dev/null
        fi
        (umask 077 && echo -n "$pw" >"$(password_file "$data").tmp")
        [ "$(id -u)" -eq 0 ] && chown "$OS_USER" "$(password_file "$data").tmp"
        mv "$(password_file "$data").tmp" "$(password_file "$data")"
    fi
    print_env "$data"
}

case "${1:-}" in
start)
    start
    ;;
env)
    print_env "$(data_dir)"
    ;;
stop)
    data=$(data_dir)
    if running "$data"; then as_server "$BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
    ;;
restart)
    data=$(data_dir)
    [ -f "$data/PG_VERSION" ] || { say "no server in $data: run start first"; exit 1; }
    # The server keeps the descriptors pg_ctl had: its output goes to the log, never to ours.
    as_server "$BIN/pg_ctl" -D "$data" -m fast -o "-p $PORT" -w -t 60 restart >>"$data/server.log" 2>&1 \
        || { tail -n 20 "$data/server.log" >&2 || true; say "restart failed (log: $data/server.log)"; exit 1; }
    ;;
status)
    running "$(data_dir)"
    ;;
*)
    echo "usage: scripts/postgres.sh start | env | stop | restart | status" >&2
    exit 2
    ;;
esac
