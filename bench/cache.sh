#!/usr/bin/env bash
# The read cache under adversarial keys: every request a new, valid cursor,
# so every request is a miss that inserts a large page. Reports the cache's
# own byte count and the proxy's RSS growth against the configured bound.
#
#   cargo build --release -p veritable-proxy && bench/cache.sh    # ~1 minute
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18095}
BOUND=$((8 * 1024 * 1024))
BIN=../target/release/veritable-proxy
RUST_LOG=warn VERITABLE_READ_CACHE_BYTES=$BOUND VERITABLE_READ_CACHE_MS=600000 \
    "$BIN" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
PID=$!
trap 'kill $PID' EXIT
until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
metric() { curl -s "http://$ADDR/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$PID/status"; }
# Warm the allocator and the pool with uncached traffic of the same shape.
wrk -t2 -c16 -d3s "http://$ADDR/api/v1/forums/categories" > /dev/null
before=$(rss)
echo "# read cache under adversarial keys, $(date -u +%FT%TZ), bound $BOUND bytes (8 MiB), TTL 10 min"
for round in 1 2 3; do
    wrk -t2 -c16 -d10s -s http/adversarial.lua "http://$ADDR" | grep -E "Requests/sec" | sed "s/^/round $round: /"
    bytes=$(metric veritable_response_cache_bytes)
    echo "round $round: cache holds $bytes bytes ($(awk -v b="$bytes" -v m="$BOUND" 'BEGIN {printf "%.2f", b / m}')× the bound)," \
         "evictions $(metric veritable_response_cache_evictions_total), misses $(metric veritable_response_cache_misses_total);" \
         "RSS growth $(( ($(rss) - before) / 1024 )) KiB ($(awk -v g="$(( $(rss) - before ))" -v m="$BOUND" 'BEGIN {printf "%.2f", g / m}')× the bound)"
done
