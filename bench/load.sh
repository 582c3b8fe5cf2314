#!/usr/bin/env bash
# The seed report's load test, judged on its own terms with veritable-load
# (BENCHMARKS.md, "The seed's load test"). Each run is one `cargo xtask load`:
# a release proxy on `default` data with the login, posting and per-address
# socket limits lifted, the tool beside it on the same 2 cores.
#
#   cargo xtask seed default        # once
#   bench/load.sh                   # runs 1, 2, 3 and 5 (~25 minutes)
#   BENCH_SOAK=1 bench/load.sh      # adds run 4, the 1-hour soak
#
# Reports (JSON) and charts (PNG) land in target/load/.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${VERITABLE_PG_PORT:-54329}
URL="postgres://veritable@127.0.0.1:$PORT/veritable_default"
load() { cargo xtask load --scale default "$@" 2>&1 | sed -n '/^veritable-load `/,$p'; }

echo "# veritable-load runs, $(date -u +%FT%TZ), $(nproc) cores"

echo; echo "## 1. The seed's scenario: 100 users (90 HTTP, 10 WebSocket), 5 minutes, 40/30/20/10"
load -- --duration 5m --users 100 --label seed-scenario

echo; echo "## 2. 5,000 users with 2 s think time, 10,000 open sockets"
load --proxy-env VERITABLE_MAX_CONNECTIONS=16000 -- \
    --duration 5m --users 5000 --sockets 10000 --think 2s --label users-5000-sockets-10000

echo; echo "## 3. The open-model ramp, with the pool wait at its old default (2 s) and its new one (100 ms)"
for wait in 2000 100; do
    load --proxy-env VERITABLE_POOL_TIMEOUT_MS=$wait -- \
        --rate 1000 --ramp --ramp-step 500 --step-time 10s --recovery 20s --label ramp-pool-wait-$wait
done

echo; echo "## 5. The same users split by kind of request (the sockets stay), with the CPU split"
for kind in lists posts wiki; do
    load -- --duration 60s --users 100 --mix $kind=90,ws=10 --label only-$kind
done

echo; echo "## PostgreSQL's ceiling for the posts: pgbench on the proxy's own statement, 16 clients (the pool's size), 60 s"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
{
    echo '\set topic random(1, 50000)'
    echo '\set uid random(4, 9000)'
    # The limit key 'post:user:<id>', spelled with chr(58): pgbench substitutes :user even inside quotes.
    target/release/veritable-proxy statement reply_create 1='ARRAY[:topic]' 2='ARRAY[NULL]' 3='ARRAY[:uid]' \
        4="ARRAY['A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?']" \
        5="ARRAY[concat('post', chr(58), 'user', chr(58), (:uid)::text)]" 6=100000000
} > "$WORK/post_reply.sql"
pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n -M prepared -f "$WORK/post_reply.sql" -c 16 -j 2 -T 60 "$URL" \
    | grep -E "tps|latency average"

if [ -n "${BENCH_SOAK:-}" ]; then
    echo; echo "## 4. Soak: 1 hour at 1,700 req/s (about half the open-model plateau), RSS every 10 s"
    load -- --rate 1700 --duration 1h --sample 10s --users 100 --label soak-1h
fi
