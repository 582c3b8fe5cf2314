#!/usr/bin/env bash
# Realtime across proxies: N release proxies behind two haproxy instances
# (round robin, WebSockets tunnelled; two because a process here may hold
# 20,000 descriptors, two per tunnelled socket), CONNS subscribers in one hot
# topic opened through the balancers in turn (so split evenly over the
# proxies), RATE replies/s written to
# it for SECS seconds. Prints ws-load's line (deliveries, commit→client
# p50/p99) and the CPU of each process during the run (utime + stime from
# /proc/PID/stat): proxies, haproxy, ws-load, PostgreSQL. Everything on
# 127.0.0.1; bounded in count and time.
#
#   cargo xtask seed default                                   # once
#   cargo build --release -p veritable-proxy && cargo build --release -p veritable-tests --bin ws-load
#   bench/realtime_cluster.sh                                  # 3 proxies, 10,000 subscribers, 100 writes/s, 20 s
#   BENCH_PROXIES=1 BENCH_FANOUT_CONNS=3000 bench/realtime_cluster.sh
#   BENCH_BALANCER=none bench/realtime_cluster.sh              # clients straight to the proxies, in turn
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
PROXIES=${BENCH_PROXIES:-3}
CONNS=${BENCH_FANOUT_CONNS:-10000}
RATE=${BENCH_RATE:-100}
SECS=${BENCH_SECS:-20}
BALANCERS=(127.0.0.1:18188 127.0.0.1:18189)
BIN=${BENCH_PROXY_BIN:-../target/release/veritable-proxy}
LOAD=../target/release/ws-load
WORK=$(mktemp -d)
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "$1"; }
for b in "$BIN" "$LOAD" /usr/sbin/haproxy; do [ -x "$b" ] || { echo "missing $b (see the header)"; exit 1; }; done
"$BIN" migrate --database-url "$URL" > /dev/null 2>&1

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
SERVERS=
for n in $(seq 1 "$PROXIES"); do
    addr=127.0.0.1:$((18190 + n))
    env RUST_LOG=warn VERITABLE_WS_PER_USER=1000000 VERITABLE_WS_PER_IP=1000000 VERITABLE_LOGIN_PER_IP=1000 \
        "$BIN" serve --database-url "$URL" --addr "$addr" >> "$WORK/proxy$n.log" 2>&1 &
    PIDS+=($!)
    SERVERS+="    server proxy$n $addr check"$'\n'
    until curl -sf "http://$addr/healthz" > /dev/null; do sleep 0.1; done
done
HAPROXIES=()
PROXY_ADDRS=$(for n in $(seq 1 "$PROXIES"); do printf '127.0.0.1:%s,' $((18190 + n)); done)
if [ "${BENCH_BALANCER:-haproxy}" = none ]; then BALANCERS=(); fi
for b in "${BALANCERS[@]}"; do
cat > "$WORK/haproxy-${b##*:}.cfg" <<EOF
global
    maxconn 9000
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend clients
    bind $b
    default_backend proxies
backend proxies
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 1s fall 2 rise 2
$SERVERS
EOF
/usr/sbin/haproxy -db -f "$WORK/haproxy-${b##*:}.cfg" > "$WORK/haproxy-${b##*:}.log" 2>&1 &
HAPROXIES+=($!)
PIDS+=($!)
until curl -sf "http://$b/healthz" > /dev/null; do
    kill -0 "${HAPROXIES[-1]}" 2> /dev/null || { cat "$WORK/haproxy-${b##*:}.log"; exit 1; }
    sleep 0.1
done
done
BALANCER=$(IFS=,; echo "${BALANCERS[*]}")
[ -n "$BALANCER" ] || BALANCER=${PROXY_ADDRS%,}

TOKEN=$(curl -sf -H 'content-type: application/json' -d '{"username":"demo","password":"veritable-demo"}' \
    "http://${BALANCER%%,*}/api/v1/auth/login" | grep -oP '"token":"\K[0-9a-f]+')
HOT=$(sql "SELECT id FROM forum_topics WHERE NOT is_deleted AND NOT is_locked ORDER BY id LIMIT 1")

# CPU ticks of a process, and of every postgres process of this cluster.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2> /dev/null || echo 0; }
pg_ticks() {
    local sum=0
    for pid in $(pgrep -u postgres -f "postgres" || true); do sum=$((sum + $(ticks "$pid"))); done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

echo "# realtime across $PROXIES proxies (balancer: ${BENCH_BALANCER:-2 haproxies}), $(date -u +%FT%TZ), $(nproc) cores, database $DB"
echo "## $CONNS subscribers in topic:$HOT through $BALANCER, $RATE writes/s for $SECS s"
"$LOAD" fanout "$BALANCER" "$TOKEN" "$CONNS" "topic:$HOT" "$URL" "$RATE" "$SECS" > "$WORK/fanout.txt" &
LOADER=$!
until grep -q "opened" "$WORK/fanout.txt" 2> /dev/null; do
    kill -0 "$LOADER" 2> /dev/null || { cat "$WORK/fanout.txt"; exit 1; }
    sleep 0.2
done
cat "$WORK/fanout.txt"
before=(); for pid in "${PIDS[@]}"; do before+=("$(ticks "$pid")"); done
load_before=$(ticks "$LOADER"); pg_before=$(pg_ticks); started=$(date +%s.%N)
# The writes' window: SECS seconds after the sockets are open.
sleep "$SECS"
after=(); for pid in "${PIDS[@]}"; do after+=("$(ticks "$pid")"); done
load_after=$(ticks "$LOADER"); pg_after=$(pg_ticks); ended=$(date +%s.%N)
wait "$LOADER"
tail -n 1 "$WORK/fanout.txt"
wall=$(echo "$ended - $started" | bc -l)
cores() { echo "scale=2; ($2 - $1) / $HZ / $wall" | bc -l; }
line="CPU in cores over the ${wall%.*} s of writes:"
proxies_total=0
for i in "${!PIDS[@]}"; do
    c=$(cores "${before[$i]}" "${after[$i]}")
    if [[ " ${HAPROXIES[*]} " == *" ${PIDS[$i]} "* ]]; then line+=" haproxy $c"; else line+=" proxy$((i + 1)) $c"; proxies_total=$(echo "$proxies_total + $c" | bc -l); fi
done
line+=", proxies together $proxies_total, ws-load $(cores "$load_before" "$load_after"), PostgreSQL $(cores "$pg_before" "$pg_after")"
echo "$line"
for n in $(seq 1 "$PROXIES"); do
    echo "proxy$n: $(curl -s "http://127.0.0.1:$((18190 + n))/metrics" | awk '$1 == "veritable_ws_connections" || $1 == "veritable_ws_slow_consumer_closes_total" {printf "%s %s  ", $1, $2}')"
done
