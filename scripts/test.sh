#!/usr/bin/env bash
# Runs the whole test suite, starting what the tests need and stopping it afterwards.
#
#   PostgreSQL  the server at MFG_TEST_DATABASE_URL (or DATABASE_URL) if set; otherwise the one
#               at 127.0.0.1:5432 if it answers; otherwise a private cluster on a free port,
#               made with the system's PostgreSQL binaries (installed with apt-get when running
#               as root and missing). Each test creates and drops a database of its own there;
#               one test (cli/tests/crash.rs) makes a cluster of its own with those binaries
#               (MFG_TEST_PG_BIN), to stop and start it under the storage service.
#   S3          when a test reads MFG_TEST_S3_ENDPOINT: moto server (pinned) from PyPI, in a
#               virtualenv under the target directory, on a free port of 127.0.0.1.
#   Python      when a test reads MFG_TEST_PYTHON: the same virtualenv's python, with pyarrow and
#               duckdb (pinned), to check that other engines read what we write.
#   Browser     when a test reads MFG_TEST_BROWSER: Debian's Chromium (installed with apt-get when
#               running as root and missing) and playwright-core (pinned) from npm, under the
#               target directory, which drives it (MFG_TEST_NODE_PATH), for the console's tests.
#
# Arguments go to the test runner: `cargo nextest run` when installed, `cargo test` otherwise.
# Example: scripts/test.sh -p mfg-tenant
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# The pinned Python tools of the tests; the virtualenv's name changes with them.
PY_TOOLS=("moto[server]==5.2.5" "pyarrow==26.0.1" "duckdb==2.0.0")
# The pinned driver of the browser tests.
NODE_TOOLS=("playwright-core@1.65.2")
mkdir -p "$TARGET"

log() { echo "test.sh: $*" >&2; }

PG_DIR=""
PG_BIN=""
MOTO_PID=""
cleanup() {
    if [[ -n $MOTO_PID ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    if [[ -n $PG_DIR ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
trap cleanup EXIT

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! answers 127.0.0.1 "$port"; then
            echo "$port"
            return
        fi
    done
    log "no free port found"
    exit 1
}

as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

wait_until_answers() { # port, what, log file
    for _ in $(seq 1 300); do
        if answers 127.0.0.1 "$1"; then return 0; fi
        sleep 0.1
    done
    log "$2 did not start; its log:"
    cat "$3" >&2 || true
    exit 1
}

# PostgreSQL's binaries: for a private cluster, and for the test that restarts its own.
find_pg_bin() {
    PG_BIN=${MFG_TEST_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}
    if [[ -z $PG_BIN ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            log "PostgreSQL is not installed; install it (its server binaries) or set MFG_TEST_PG_BIN"
            exit 1
        fi
        log "installing PostgreSQL with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    export MFG_TEST_PG_BIN=$PG_BIN
}

start_private_postgres() {
    PG_DIR=$(mktemp -d /tmp/mfg-test-pg.XXXXXX)
    local port
    port=$(free_port)
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres "$PG_DIR"
    fi
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    wait_until_answers "$port" PostgreSQL "$PG_DIR/server.log"
    export MFG_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    log "started a private PostgreSQL on 127.0.0.1:$port"
}

find_pg_bin
if [[ -n ${MFG_TEST_DATABASE_URL:-} ]]; then
    log "using PostgreSQL from MFG_TEST_DATABASE_URL"
elif [[ -n ${DATABASE_URL:-} ]]; then
    export MFG_TEST_DATABASE_URL=$DATABASE_URL
    log "using PostgreSQL from DATABASE_URL"
elif answers 127.0.0.1 5432; then
    export MFG_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "using the PostgreSQL server at 127.0.0.1:5432"
else
    start_private_postgres
fi

uses() { grep -rqs --include='*.rs' "$1" common services gateway cli tests; }

if uses MFG_TEST_S3_ENDPOINT || uses MFG_TEST_PYTHON; then
    VENV=$TARGET/test-venv-$(printf '%s\n' "${PY_TOOLS[@]}" | cksum | cut -d' ' -f1)
    if [[ ! -x $VENV/bin/moto_server ]]; then
        log "installing ${PY_TOOLS[*]} into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
    fi
    export MFG_TEST_PYTHON=$VENV/bin/python
fi

if uses MFG_TEST_S3_ENDPOINT; then
    S3_PORT=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$TARGET/moto.log" 2>&1 &
    MOTO_PID=$!
    wait_until_answers "$S3_PORT" "moto server" "$TARGET/moto.log"
    export MFG_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
    log "started moto server on 127.0.0.1:$S3_PORT"
fi

install_debian() { # package, what for
    if [[ $(id -u) -ne 0 ]]; then
        log "$1 is not installed; install it ($2)"
        exit 1
    fi
    log "installing $1 with apt-get ($2)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
    }
}

if uses MFG_TEST_BROWSER; then
    CHROMIUM=${MFG_TEST_BROWSER:-$(command -v chromium || true)}
    if [[ -z $CHROMIUM ]]; then
        install_debian chromium "the console's browser tests"
        CHROMIUM=$(command -v chromium)
    fi
    if ! command -v node >/dev/null 2>&1; then
        install_debian nodejs "the console's browser tests"
        install_debian npm "the console's browser tests"
    fi
    NODE_DIR=$TARGET/test-node-$(printf '%s\n' "${NODE_TOOLS[@]}" | cksum | cut -d' ' -f1)
    if [[ ! -d $NODE_DIR/node_modules/playwright-core ]]; then
        log "installing ${NODE_TOOLS[*]} into $NODE_DIR"
        mkdir -p "$NODE_DIR"
        npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund --silent "${NODE_TOOLS[@]}"
    fi
    export MFG_TEST_BROWSER=$CHROMIUM
    export MFG_TEST_NODE_PATH=$NODE_DIR/node_modules
fi

# Without arguments, the whole workspace; with arguments (e.g. `-p mfg-tenant`), what they select.
if [[ $# -eq 0 ]]; then
    set -- --workspace
fi
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast "$@"
else
    log "cargo-nextest is not installed; using cargo test"
    cargo test --locked --no-fail-fast "$@"
fi
