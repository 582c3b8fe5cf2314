#!/usr/bin/env bash
# Realtime benchmarks: memory per WebSocket, memory over connect/disconnect
# cycles, commit→client latency in a hot room, and what realtime costs the
# writers. Everything on 127.0.0.1; the load client (ws-load), the proxy and
# PostgreSQL share the cores.
#
#   cargo xtask seed default                                   # once
#   cargo build --release -p veritable-proxy && cargo build --release -p veritable-tests --bin ws-load
#   bench/realtime.sh                                          # ~6 minutes
#   BENCH_SECTIONS="fanout writers" bench/realtime.sh          # some sections only (idle cycles fanout writers)
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18090}
BIN=${BENCH_PROXY_BIN:-../target/release/veritable-proxy}  # another build for side-by-side runs
LOAD=../target/release/ws-load
IDLE=${BENCH_IDLE_CONNS:-10000}
CYCLES=${BENCH_CYCLES:-100000}
FANOUT=${BENCH_FANOUT_CONNS:-10000}
WORK=$(mktemp -d)
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "$1"; }

for b in "$BIN" "$LOAD"; do [ -x "$b" ] || { echo "build first: cargo build --release -p veritable-proxy and cargo build --release -p veritable-tests --bin ws-load"; exit 1; }; done
"$BIN" migrate --database-url "$URL" > /dev/null 2>&1
PID=
start_proxy() {
    env RUST_LOG=warn VERITABLE_WS_PER_USER=1000000 VERITABLE_WS_PER_IP=1000000 VERITABLE_LOGIN_PER_IP=1000 \
        "$BIN" serve --database-url "$URL" --addr "$ADDR" >> "$WORK/proxy.log" 2>&1 &
    PID=$!
    until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
}
stop_proxy() { [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }; }
trap 'stop_proxy; rm -rf "$WORK"' EXIT
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }
metric() { curl -s "http://$ADDR/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

echo "# veritable realtime benchmarks, $(date -u +%FT%TZ), $(nproc) cores, database $DB"
start_proxy
TOKEN=$(curl -sf -H 'content-type: application/json' -d '{"username":"demo","password":"veritable-demo"}' \
    "http://$ADDR/api/v1/auth/login" | grep -oP '"token":"\K[0-9a-f]+')
HOT=$(sql "SELECT id FROM forum_topics WHERE NOT is_deleted AND NOT is_locked ORDER BY id LIMIT 1")
export BENCH_TOPIC_IDS; BENCH_TOPIC_IDS=$(sql "SELECT string_agg(id::text, ',') FROM (SELECT id FROM forum_topics WHERE NOT is_deleted ORDER BY id LIMIT 1000) t")
export BENCH_WIKI; BENCH_WIKI=$(sql "SELECT slug FROM wiki_pages WHERE NOT is_deleted ORDER BY id LIMIT 1")

SECTIONS=${BENCH_SECTIONS:-idle cycles fanout writers}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

if want idle; then
echo; echo "## RSS per idle authenticated connection, 3 rooms each, $IDLE connections"
"$LOAD" idle "$ADDR" "$TOKEN" 200 2 > /dev/null   # warm the allocator and the pool
before=$(rss_kb)
"$LOAD" idle "$ADDR" "$TOKEN" "$IDLE" 15 > "$WORK/idle.txt" &
LOADER=$!
until grep -q ready "$WORK/idle.txt" 2>/dev/null; do sleep 0.5; done
sleep 2
held=$(rss_kb)
echo "$(cat "$WORK/idle.txt"); proxy RSS ${before} kB → ${held} kB: $(( (held - before) * 1024 / IDLE )) bytes per connection" \
     "(ws_connections $(metric veritable_ws_connections), ws_subscriptions $(metric veritable_ws_subscriptions))"
wait $LOADER
until [ "$(metric veritable_ws_connections)" = 0 ]; do sleep 0.2; done
echo "after they closed: RSS $(rss_kb) kB, ws_connections 0, ws_rooms $(metric veritable_ws_rooms), ws_tracked_clients $(metric veritable_ws_tracked_clients)"

fi

if want cycles; then
echo; echo "## RSS over $CYCLES connect/subscribe/disconnect cycles (half close, half drop), 50 at a time"
"$LOAD" cycles "$ADDR" "$TOKEN" 5000 50 > /dev/null   # warm-up
until [ "$(metric veritable_ws_connections)" = 0 ]; do sleep 0.2; done
before=$(rss_kb)
"$LOAD" cycles "$ADDR" "$TOKEN" "$CYCLES" 50
until [ "$(metric veritable_ws_connections)" = 0 ]; do sleep 0.2; done
after=$(rss_kb)
echo "RSS before ${before} kB, after ${after} kB: $(awk -v a="$after" -v b="$before" 'BEGIN {printf "%+.1f%%", (a - b) * 100 / b}')" \
     "(VmHWM $(hwm_kb) kB; ws_connections 0, ws_rooms $(metric veritable_ws_rooms), ws_tracked_clients $(metric veritable_ws_tracked_clients))"

fi

if want fanout; then
echo; echo "## Commit → client latency: $FANOUT subscribers in topic:$HOT, 100 writes/s for 20 s"
"$LOAD" fanout "$ADDR" "$TOKEN" "$FANOUT" "topic:$HOT" "$URL" 100 20
echo "slow-consumer closes: $(metric veritable_ws_slow_consumer_closes_total), queue drops: $(metric veritable_ws_queue_drops_total)"
fi
stop_proxy

if want writers; then
echo; echo "## Reply inserts at 32 clients (pgbench), realtime off (no proxy) vs on (proxy + 1,000 subscribed sockets)"
TOPICS=$(sql "SELECT max(id) FROM forum_topics")
USERS=$(sql "SELECT max(id) FROM users")
pgb() { pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n -f insert_reply.sql -c 32 -j 2 -T 10 -D topics="$TOPICS" -D users="$USERS" "$DB" 2>&1 | grep -oP 'tps = \K[0-9.]+' | head -1; }
for round in 1 2; do
    echo "round $round  realtime off  $(pgb) tps"
    start_proxy
    "$LOAD" idle "$ADDR" "$TOKEN" 1000 14 > "$WORK/on.txt" &
    LOADER=$!
    until grep -q ready "$WORK/on.txt" 2>/dev/null; do sleep 0.2; done
    echo "round $round  realtime on   $(pgb) tps  (events routed $(metric veritable_ws_events_routed_total))"
    wait $LOADER || true
    stop_proxy
done
# Let a sequencer stamp what the realtime-off rounds left behind.
start_proxy
until [ "$(sql "SELECT count(*) FROM events WHERE seq IS NULL")" = 0 ]; do sleep 0.5; done
fi
