# shellcheck shell=bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the distributed-search test.
#
#   source .ci/postgres.sh      # from the repository root, before pytest
#   ...run the tests...
#   codesign_postgres_stop      # at the end (also registered on EXIT when no EXIT trap exists)
#
# On success exports CODESIGN_TEST_POSTGRES_URL=postgresql+psycopg2://postgres@127.0.0.1:PORT/codesign_test.
# It never fails the caller: any problem prints one "postgres.sh: ..." line, leaves the variable
# unset, and tests/test_search_postgres.py skips with that reason (CODESIGN_TEST_POSTGRES_SKIP).
# Installs, when missing and possible: the postgresql Debian package (apt-get, as root) and
# psycopg2-binary into the project's venv (${CODESIGN_VENV:-.venv}).

codesign_postgres_stop() {
    if [ -n "${_CODESIGN_PG_DIR:-}" ] && [ -d "${_CODESIGN_PG_DIR}" ]; then
        ${_CODESIGN_PG_RUN:-} "${_CODESIGN_PG_BIN}/pg_ctl" -D "${_CODESIGN_PG_DIR}/data" -m immediate stop \
            >/dev/null 2>&1 || true
        rm -rf "${_CODESIGN_PG_DIR}"
    fi
    unset _CODESIGN_PG_DIR CODESIGN_TEST_POSTGRES_URL
}

_codesign_postgres_start() {
    local venv="${CODESIGN_VENV:-.venv}" py bin dir port run_as=""
    _codesign_pg_skip() { echo "postgres.sh: $1 (the PostgreSQL test will skip)" >&2; export CODESIGN_TEST_POSTGRES_SKIP="$1"; }
    if [ -n "${CODESIGN_TEST_POSTGRES_URL:-}" ]; then
        echo "postgres.sh: using the given CODESIGN_TEST_POSTGRES_URL" >&2; return 0
    fi
    py="${venv}/bin/python"; [ -x "$py" ] || py="$(command -v python3)"
    if ! "$py" -c "import psycopg2" >/dev/null 2>&1; then
        timeout 120 "$py" -m pip install -q psycopg2-binary >/dev/null 2>&1 \
            || { _codesign_pg_skip "psycopg2-binary could not be installed"; return 0; }
    fi
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 \
            apt-get install -y -qq postgresql; } >/dev/null 2>&1
        bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    fi
    [ -n "$bin" ] && [ -x "$bin/initdb" ] || { _codesign_pg_skip "PostgreSQL is not installed"; return 0; }
    dir="$(mktemp -d /tmp/codesign-pg.XXXXXX)" || { _codesign_pg_skip "mktemp failed"; return 0; }
    if [ "$(id -u)" = "0" ]; then  # initdb refuses to run as root
        id postgres >/dev/null 2>&1 || { _codesign_pg_skip "running as root without a postgres user"; rm -rf "$dir"; return 0; }
        local ru; ru="$(command -v runuser || echo /usr/sbin/runuser)"
        [ -x "$ru" ] || { _codesign_pg_skip "runuser is missing"; rm -rf "$dir"; return 0; }
        chown postgres "$dir"; chmod 700 "$dir"; run_as="$ru -u postgres --"
    fi
    port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    _pg() { $run_as "$@"; }  # run a PostgreSQL binary as the right user
    _pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
        || { _codesign_pg_skip "initdb failed (see $dir/initdb.log)"; return 0; }
    _pg "$bin/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/server.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1 \
        || { _codesign_pg_skip "the server did not start (see $dir/server.log)"; return 0; }
    export _CODESIGN_PG_DIR="$dir" _CODESIGN_PG_BIN="$bin" _CODESIGN_PG_RUN="$run_as"
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres codesign_test >/dev/null 2>&1 \
        || { _codesign_pg_skip "createdb failed"; codesign_postgres_stop; return 0; }
    export CODESIGN_TEST_POSTGRES_URL="postgresql+psycopg2://postgres@127.0.0.1:${port}/codesign_test"
    unset CODESIGN_TEST_POSTGRES_SKIP
    echo "postgres.sh: PostgreSQL on 127.0.0.1:${port} (data in $dir)" >&2
    [ -z "$(trap -p EXIT)" ] && trap codesign_postgres_stop EXIT
    return 0
}

# Sourced from scripts running under `set -euo pipefail`: relax those options while setting up, restore after.
_codesign_pg_opts="$-"; _codesign_pg_pf=0; [[ -o pipefail ]] && _codesign_pg_pf=1
set +e +u +o pipefail
_codesign_postgres_start || true
case "$_codesign_pg_opts" in *e*) set -e ;; esac
case "$_codesign_pg_opts" in *u*) set -u ;; esac
[ "$_codesign_pg_pf" = 1 ] && set -o pipefail
unset _codesign_pg_opts _codesign_pg_pf
