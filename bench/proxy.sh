#!/usr/bin/env bash
# HTTP benchmarks of veritable-proxy, each beside PostgreSQL's own ceiling
# (pgbench running the same SQL with the same client count) in the same run.
#
#   cargo xtask seed default                      # once: 10k users, 50k topics, 1M replies
#   cargo build --release -p veritable-proxy
#   bench/proxy.sh                                # ~8 minutes; BENCH_SECS=10 per run
#   BENCH_SOAK=1 bench/proxy.sh                   # adds RSS after 1M requests (~5 more minutes)
#
# Everything runs on this machine: wrk or pgbench, the proxy and PostgreSQL
# share the cores. The proxy runs with its defaults (pool of 16) except that
# the login and posting limits are lifted so the load is not answered 429.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-10}
DB=${BENCH_DB:-veritable_default}
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
ADDR=127.0.0.1:${BENCH_HTTP_PORT:-18080}
BIN=${BENCH_PROXY_BIN:-../target/release/veritable-proxy}  # another build for side-by-side runs
WORK=$(mktemp -d)
# The binary that prints the statements (a build from before `statement` existed cannot).
SQL_BIN=${BENCH_SQL_BIN:-$BIN}
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "$1"; }

[ -x "$BIN" ] || { echo "build it first: cargo build --release -p veritable-proxy"; exit 1; }
sql "SELECT 1" > /dev/null || { echo "database $DB missing: cargo xtask seed default"; exit 1; }
"$BIN" migrate --database-url "$URL" > /dev/null 2>&1
TOPICS=$(sql "SELECT max(id) FROM forum_topics")
# pgbench runs the proxy's own statements (store::ALL), printed by the binary
# with pgbench variables in place of their parameters.
"$SQL_BIN" statement topic_page 1=NULL 2=NULL 3=20 > "$WORK/topics.sql"
{
    echo '\set topic random(1, :topics)'
    echo '\set uid random(4, 35)'
    # The limit key 'post:user:<id>', spelled with chr(58): pgbench substitutes :user even inside quotes.
    "$SQL_BIN" statement reply_create 1='ARRAY[:topic]' 2='ARRAY[NULL]' 3='ARRAY[:uid]' \
        4="ARRAY['A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?']" \
        5="ARRAY[concat('post', chr(58), 'user', chr(58), (:uid)::text)]" 6=100000000
} > "$WORK/post_reply.sql"

PID=
# start_proxy [VAR=value...]: (re)starts the release proxy with these settings.
start_proxy() {
    [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; }
    env RUST_LOG=warn VERITABLE_LOGIN_PER_IP=100000000 VERITABLE_LOGIN_PER_ACCOUNT=100000000 \
        VERITABLE_POSTS_PER_MINUTE=100000000 "$@" "$BIN" serve --database-url "$URL" --addr "$ADDR" >> "$WORK/proxy.log" 2>&1 &
    PID=$!
    until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
}
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

# wrk_run CONNECTIONS [wrk args...]: "rps p50 p99" (ms) and non-2xx count.
wrk_run() {
    local c=$1; shift
    wrk -t2 -c"$c" -d"${SECS}s" --latency "$@" > "$WORK/wrk.txt" 2>&1 || { cat "$WORK/wrk.txt"; exit 1; }
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { bad = $NF }
        END { printf "%8.0f/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d\n", rps, p50, p99, bad }' "$WORK/wrk.txt"
}

# pgb_run SCRIPT CLIENTS [pgbench args...]: "tps p50 p99" from the per-transaction log.
pgb_run() {
    local script=$1 c=$2; shift 2
    case $script in /*) ;; *) script=$PWD/$script ;; esac
    rm -f "$WORK"/pgb.*
    (cd "$WORK" && pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n -M prepared -f "$script" -c "$c" -j 2 \
        -T "$SECS" -l --log-prefix=pgb "$@" "$DB" > pgbench.txt 2>&1) || { cat "$WORK/pgbench.txt"; exit 1; }
    local tps; tps=$(grep -oP 'tps = \K[0-9.]+' "$WORK/pgbench.txt" | head -1)
    cat "$WORK"/pgb.* | awk '{print $3}' | sort -n | awk -v tps="$tps" \
        '{a[NR]=$1} END {printf "%8.0f/s  p50 %7.2f ms  p99 %7.2f ms\n", tps, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
}

echo "# veritable-proxy benchmarks, $(date -u +%FT%TZ), $(nproc) cores, ${SECS}s per run, database $DB ($TOPICS topics)"
sql "VACUUM ANALYZE forum_topics, forum_topic_stats" > /dev/null

echo; echo "## GET /api/v1/forums/topics (first page, all categories) vs pgbench on the same statement"
echo "proxy uncached: VERITABLE_READ_CACHE_MS=0, every request runs the statement; cached: the default 1 s read cache"
for round in 1 2; do
    for c in 64 256; do
        echo "round $round  c=$c  pgbench          $(pgb_run "$WORK/topics.sql" "$c")"
        start_proxy VERITABLE_READ_CACHE_MS=0
        echo "round $round  c=$c  proxy uncached   $(wrk_run "$c" "http://$ADDR/api/v1/forums/topics")"
        start_proxy
        echo "round $round  c=$c  proxy cached     $(wrk_run "$c" "http://$ADDR/api/v1/forums/topics")"
    done
done
start_proxy VERITABLE_READ_CACHE_MS=0

echo; echo "## Login flood: topic reads (c=64, uncached) idle, then beside 200 concurrent logins"
echo "reads idle            $(wrk_run 64 "http://$ADDR/api/v1/forums/topics")"
wrk -t1 -c200 -d"$((SECS + 2))s" --latency -s http/login.lua "http://$ADDR/api/v1/auth/login" > "$WORK/flood.txt" 2>&1 &
FLOOD=$!
sleep 1
echo "reads during flood    $(wrk_run 64 "http://$ADDR/api/v1/forums/topics")"
wait $FLOOD
echo "the flood itself      $(awk '/Requests\/sec/ {print $2 "/s"} $1 == "99%" {print "p99 " $2} /Non-2xx/ {print "non-2xx " $NF}' "$WORK/flood.txt" | paste -sd' ')"
echo "reads idle again      $(wrk_run 64 "http://$ADDR/api/v1/forums/topics")"

echo; echo "## POST /api/v1/forums/topics/{id}/replies, 32 users, c=32, vs pgbench on the same INSERT"
TOKENS=""
for name in $(sql "SELECT username FROM users WHERE id BETWEEN 4 AND 35 ORDER BY id"); do
    token=$(curl -sf -H 'content-type: application/json' -d "{\"username\":\"$name\",\"password\":\"veritable-demo\"}" \
        "http://$ADDR/api/v1/auth/login" | grep -oP '"token":"\K[0-9a-f]+')
    TOKENS="$TOKENS\"$token\","
done
cat > "$WORK/post.lua" <<EOF
local tokens = { $TOKENS }
wrk.method = "POST"
request = function()
  local path = "/api/v1/forums/topics/" .. math.random(1, $TOPICS) .. "/replies"
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[math.random(1, #tokens)],
  }, '{"body":"A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?"}')
end
EOF
for round in 1 2; do
    echo "round $round  pgbench $(pgb_run "$WORK/post_reply.sql" 32 -D topics="$TOPICS")"
    echo "round $round  proxy   $(wrk_run 32 -s "$WORK/post.lua" "http://$ADDR")"
done
echo "(non-2xx in the proxy rows: 404/409 for deleted or locked topics; pgbench's same statement inserts nothing for them)"

rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$PID/status"; }
echo; echo "proxy memory after the runs above: $(rss)"

if [ "${BENCH_SOAK:-0}" = 1 ]; then
    start_proxy
    echo; echo "## RSS over 1,000,000 mixed reads (topic list, topic detail, reply trees, categories), c=64, default settings"
    echo "before: $(rss)"
    requests() { curl -s "http://$ADDR/metrics" | awk '/^veritable_http_requests_total/ {s += $2} END {printf "%d", s}'; }
    start=$(date +%s)
    BENCH_TOPICS=$TOPICS wrk -t2 -c64 -d3600s -s http/mixed.lua "http://$ADDR" > "$WORK/soak.txt" 2>&1 &
    WRK=$!
    # wrk stops on a duration, not a count: watch the proxy's own counter.
    until [ "$(requests)" -ge 1000000 ]; do sleep 1; done
    kill "$WRK"; wait "$WRK" 2>/dev/null || true
    echo "after:  $(rss)  ($(requests) requests in $(( $(date +%s) - start )) s)"
    curl -s "http://$ADDR/metrics" | grep -E '^veritable_(tokio_alive_tasks|response_cache_bytes|session_cache_bytes|topic_views_dropped_total) '
fi
