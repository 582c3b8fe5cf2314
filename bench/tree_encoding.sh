#!/usr/bin/env bash
# The hot topic's reply tree (depth 8, 300 items) by Accept-Encoding:
# identity, gzip, br; served from the read cache (encoded once per fill)
# and with the cache off (VERITABLE_READ_CACHE_MS=0: every answer built and
# encoded per request by tower-http's layer). wrk -t2 at 32 connections,
# two rounds; the sizes of each encoding first.
#
#   cargo xtask seed default
#   cargo build --release -p veritable-proxy
#   bench/tree_encoding.sh     # ~3 minutes
#
# wrk, the proxy and PostgreSQL share the cores.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-10}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18080}
BIN=${BENCH_PROXY_BIN:-../target/release/veritable-proxy}
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "$1"; }
HOT=$(sql "SELECT topic_id FROM forum_topic_stats ORDER BY reply_count DESC LIMIT 1")
PATH_Q="/api/v1/forums/topics/$HOT/replies?depth=8&limit=300"
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null' EXIT
start() {
    [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; }
    env RUST_LOG=warn VERITABLE_READ_CACHE_MS="$1" "$BIN" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
    PID=$!
    until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
}
echo "# topic $HOT, $PATH_Q, wrk -t2 -c32 ${SECS}s, $(date -u +%FT%TZ)"
start 1000
for e in identity gzip br; do
    echo "$e: $(curl -s -H "accept-encoding: $e" -o /dev/null -w '%{size_download} bytes' "http://$ADDR$PATH_Q")"
done
echo "| round | cache | Accept-Encoding | req/s | p50 ms | p99 ms | non-2xx | MB/s transferred |"
echo "|---|---|---|---|---|---|---|---|"
for round in 1 2; do
    for cache in 1000 0; do
        start "$cache"
        for e in identity gzip br; do
            curl -sf -H "accept-encoding: $e" "http://$ADDR$PATH_Q" > /dev/null
            out=$(wrk -t2 -c32 -d"${SECS}s" --latency -H "Accept-Encoding: $e" "http://$ADDR$PATH_Q")
            echo "$out" | awk -v r="$round" -v c="$([ "$cache" = 0 ] && echo off || echo on)" -v e="$e" '
                function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
                function mb(v) { if (v ~ /GB$/) return v * 1024; if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024; return v / 1048576 }
                /Requests\/sec/ { rps = $2 } /Transfer\/sec/ { tr = mb($2) } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
                /Non-2xx/ { bad = $NF }
                END { printf "| %s | %s | %s | %.0f | %.2f | %.2f | %d | %.1f |\n", r, c, e, rps, p50, p99, bad, tr }'
        done
    done
done
