#!/usr/bin/env bash
# The hot topic's reply tree over HTTP (the first page every visitor reads:
# depth 8, 300 items), wrk at 32 and 128 connections, two builds alternating
# in one run, two rounds: e.g. the build before the tree cache and this one.
#
#   cargo xtask seed default
#   cargo build --release -p veritable-proxy
#   BENCH_BEFORE_BIN=path/to/older/veritable-proxy bench/tree.sh   # ~3 minutes
#
# wrk, the proxy and PostgreSQL share the cores; the proxies run with their
# defaults (read cache 1 s, refresh 250 ms).
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-15}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18080}
AFTER=${BENCH_PROXY_BIN:-../target/release/veritable-proxy}
BEFORE=${BENCH_BEFORE_BIN:?the build to compare with}
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "$1"; }
HOT=$(sql "SELECT topic_id FROM forum_topic_stats ORDER BY reply_count DESC LIMIT 1")
REPLIES=$(sql "SELECT reply_count FROM forum_topic_stats WHERE topic_id = $HOT")
PATH_Q="/api/v1/forums/topics/$HOT/replies?depth=8&limit=300"
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null' EXIT
start() {
    [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; }
    RUST_LOG=warn "$1" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
    PID=$!
    until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
}
echo "# topic $HOT ($REPLIES replies), $PATH_Q, wrk -t2 ${SECS}s, $(date -u +%FT%TZ)"
echo "| round | build | connections | req/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for round in 1 2; do
    for build in before after; do
        bin=$BEFORE; [ "$build" = after ] && bin=$AFTER
        start "$bin"
        curl -sf "http://$ADDR$PATH_Q" > /dev/null
        for c in 32 128; do
            out=$(wrk -t2 -c"$c" -d"${SECS}s" --latency "http://$ADDR$PATH_Q")
            echo "$out" | awk -v r="$round" -v b="$build" -v c="$c" '
                function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
                /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
                /Non-2xx/ { bad = $NF }
                END { printf "| %s | %s | %s | %.0f | %.2f | %.2f | %d |\n", r, b, c, rps, p50, p99, bad }'
        done
    done
done
