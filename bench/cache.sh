#!/usr/bin/env bash
# The read cache under adversarial keys: every request a new, valid cursor,
# so every request is a miss that inserts an entry. Reports the cache's own
# byte count, and how much RSS each byte of configured bound costs (the
# growth between an 8 MiB and a 32 MiB bound, so the proxy's own working
# memory cancels out).
#
#   cargo build --release -p veritable-proxy && bench/cache.sh    # ~2 minutes
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18095}
BIN=../target/release/veritable-proxy
metric() { curl -s "http://$ADDR/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$PID/status"; }
PID=
trap '[ -n "$PID" ] && kill $PID' EXIT
echo "# read cache under adversarial keys, $(date -u +%FT%TZ), TTL 10 min, wrk -t2 -c16, 2 x 10 s per case"
# fill BOUND NAME [env for the Lua script]: a fresh proxy with that bound, filled with adversarial keys.
fill() {
    local bound=$1 name=$2; shift 2
    RUST_LOG=warn VERITABLE_READ_CACHE_BYTES=$bound VERITABLE_READ_CACHE_MS=600000 \
        "$BIN" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
    PID=$!
    until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
    wrk -t2 -c16 -d3s "http://$ADDR/api/v1/forums/categories" > /dev/null    # warm the pool and the allocator
    local before; before=$(rss)
    for _ in 1 2; do env "$@" wrk -t2 -c16 -d10s -s http/adversarial.lua "http://$ADDR" > /dev/null; done
    local bytes growth; bytes=$(metric veritable_response_cache_bytes); growth=$(( $(rss) - before ))
    echo "$name, bound $((bound / 1048576)) MiB: cache counts $bytes bytes ($(awk -v b="$bytes" -v m="$bound" 'BEGIN {printf "%.2f", b / m}')×)," \
         "evictions $(metric veritable_response_cache_evictions_total); RSS growth $((growth / 1024)) KiB"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
    LAST_GROWTH=$growth
}
for case in large small; do
    if [ $case = large ]; then args=(BENCH_PAGE=100); else args=(BENCH_PAGE=1 BENCH_FROM=1 BENCH_TO=700000000000000); fi
    fill $((8 * 1048576)) "$case entries" "${args[@]}"; g8=$LAST_GROWTH
    fill $((32 * 1048576)) "$case entries" "${args[@]}"; g32=$LAST_GROWTH
    echo "$case entries: RSS per byte of bound, from 8 to 32 MiB: $(awk -v a="$g8" -v b="$g32" 'BEGIN {printf "%.2f", (b - a) / (24 * 1048576)}')×"
done
