#!/usr/bin/env bash
# Slowloris and idle floods against the release proxy on 127.0.0.1: one
# client's p50/p99 alone and while 5,000 other connections are held open
# (half idle, half trickling an unfinished request head), three rounds.
#
#   cargo build --release -p veritable-proxy -p veritable-tests
#   bench/edge.sh            # after `cargo xtask test` (database veritable_test) or with BENCH_DB
#
# The proxy, the load tool and PostgreSQL share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_test}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:18087
BIN=../target/release/veritable-proxy
LOAD=../target/release/edge-load
HELD=${HELD:-5000}
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release -p veritable-proxy -p veritable-tests"; exit 1; }
RUST_LOG=warn "$BIN" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
echo "# edge benchmark, $(date -u +%FT%TZ), $(nproc) cores, $HELD held connections, database $DB"
for round in 1 2 3; do
    "$LOAD" "$ADDR" "$HELD" 4
    sleep 11   # the held connections time out (header timeout 10 s) before the next round
done
