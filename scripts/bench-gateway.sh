#!/usr/bin/env bash
# REST through the gateway, measured with wrk: `mfg up` on the embedded default in a temporary
# directory, a dedicated tenant (no rate limit in the way) and a read key, then an authenticated
# `GET /v1/tenants/{id}` with 64 connections for 10 s. Give several binaries to compare them in
# one run, alternately (e.g. the build before a change and after it):
#
#   scripts/bench-gateway.sh target/release/mfg /tmp/mfg-before
#
# Needs wrk (`apt-get install wrk`) and curl. Exits non-zero when a call fails.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: $0 MFG_BINARY [MFG_BINARY...]" >&2; exit 2; }

run_one() {
  local binary=$1 dir port
  dir=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  local token="bench-operator-token-$RANDOM$RANDOM"
  "$binary" up --log-filter warn --admin-token "$token" --data-dir "$dir" --gateway-addr "127.0.0.1:$port" \
    --tenant-addr 127.0.0.1:0 --storage-addr 127.0.0.1:0 --cost-addr 127.0.0.1:0 \
    --provisioning-addr 127.0.0.1:0 >"$dir/up.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null; rm -rf "$dir"' RETURN
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local tenant key
  tenant=$(curl -fsS -X POST "$base/v1/tenants" -H "Authorization: Bearer $token" \
    -d '{"name": "bench", "plan": "PLAN_DEDICATED", "limits": {"apiRequestsPerSecond": 10000000}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  key=$(curl -fsS -X POST "$base/v1/tenants/$tenant/api-keys" -H "Authorization: Bearer $token" \
    -d '{"scopes": ["SCOPE_READ"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  curl -fsS "$base/v1/tenants/$tenant" -H "Authorization: Bearer $key" >/dev/null
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $key" \
    "$base/v1/tenants/$tenant")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  printf '%-28s %10s req/s  p50 %8s  p99 %8s  %s\n' "$binary" "$rps" "$p50" "$p99" "${errors:-no errors}"
  [ -z "$errors" ]
}

status=0
for round in $(seq 1 "$ROUNDS"); do
  for binary in "$@"; do
    run_one "$binary" || status=1
  done
done
exit $status
