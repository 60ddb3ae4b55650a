#!/usr/bin/env bash
# Applies the PostgreSQL settings the hot tier wants for ingest at volume (hundreds of
# thousands of readings a second), as measured in docs/BENCHMARKS.md ("Server settings") and
# explained in docs/decisions/0010-hot-tier-statements.md:
#
#   shared_buffers  = a quarter of RAM, at most 8GB   (needs a restart of the server)
#   max_wal_size    = 8GB     no checkpoint forced every ~20 s by ~50 MB/s of WAL
#   min_wal_size    = 2GB     WAL segments recycled instead of created and zero-filled
#   wal_compression = lz4     smaller full-page images after a checkpoint
#   vm.dirty_background_bytes = 16 MiB (Linux, as root): new table pages are written back
#                   steadily instead of in one burst of ~900 MB that stalls every commit
#
# Nothing in the platform depends on these; they move latency tails, not correctness.
# Usage: scripts/tune-postgres.sh [postgres://user@host:port/db]   (a superuser connection)
set -euo pipefail

URL=${1:-postgres://postgres@127.0.0.1:5432/postgres}
ram_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
buffers_mb=$((ram_kb / 4 / 1024))
if [ "$buffers_mb" -gt 8192 ]; then buffers_mb=8192; fi

psql "$URL" -v ON_ERROR_STOP=1 -q \
  -c "ALTER SYSTEM SET shared_buffers = '${buffers_mb}MB'" \
  -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
  -c "ALTER SYSTEM SET min_wal_size = '2GB'" \
  -c "ALTER SYSTEM SET wal_compression = 'lz4'" \
  -c "SELECT pg_reload_conf()" >/dev/null
echo "tune-postgres: set shared_buffers=${buffers_mb}MB, max_wal_size=8GB, min_wal_size=2GB, wal_compression=lz4"
pending=$(psql "$URL" -Atc "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")
if [ -n "$pending" ]; then
  echo "tune-postgres: restart the server for: $pending" \
    "(Debian: pg_ctlcluster --skip-systemctl-redirect <version> main restart)"
fi

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/dirty_background_bytes ]; then
  echo $((16 * 1024 * 1024)) >/proc/sys/vm/dirty_background_bytes
  echo "tune-postgres: vm.dirty_background_bytes=16777216 (until the next boot)"
else
  echo "tune-postgres: as root, also: sysctl -w vm.dirty_background_bytes=16777216"
fi
