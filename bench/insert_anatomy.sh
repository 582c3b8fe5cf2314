#!/usr/bin/env bash
# What a reply insert costs PostgreSQL with the triggers, against the bare
# insert, one row per statement (one commit per reply) and ROWS rows per
# statement (the proxy's group commit), side by side.
#
#   cargo xtask seed medium      # once (BENCH_FROM=veritable_default to use that)
#   bench/insert_anatomy.sh      # ~4 minutes
#
# Works on a throwaway copy (veritable_exp, dropped at the end), because the
# bare runs disable the triggers. Per variant: replies per second at 32
# clients, WAL bytes and records per reply (pg_stat_wal), and CPU per reply of
# the 32 backends and of pgbench (/proc/PID/stat over the middle of the run,
# divided by the replies committed). pgbench and PostgreSQL share the two cores.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
DB=veritable_exp
FROM=${BENCH_FROM:-veritable_medium}
ROWS=${BENCH_ROWS:-16}
as_super() { psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" "$@"; }

as_super -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE $FROM OWNER veritable"
trap 'as_super -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null' EXIT

topics=$(sql -c "SELECT max(id) FROM forum_topics")
users=$(sql -c "SELECT max(id) FROM users")
tick=$(getconf CLK_TCK)
cpu() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
wal() { sql -c "SELECT wal_records || ' ' || wal_bytes FROM pg_stat_wal"; }
commits() { sql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }

# Vacuum what the last run wrote and merge the GIN pending lists, so no run
# pays for its predecessor's maintenance.
settle() {
    sql -c "VACUUM forum_replies, events, unified_activity, forum_topic_participants, forum_topic_stats, forum_topics" \
        -c "SELECT gin_clean_pending_list('forum_replies_search_idx'::regclass), gin_clean_pending_list('forum_topics_search_idx'::regclass)" > /dev/null
}

# run bare|all ROWS: ROWS replies per statement, triggers off (bare) or on.
run() {
    local variant=$1 rows=$2 out pid backends pgb b0 g0 c0 b1 g1 c1 r0 w0 r1 w1 n
    [ "$variant" = bare ] && sql -c "ALTER TABLE forum_replies DISABLE TRIGGER USER"
    settle
    read -r r0 w0 <<< "$(wal)"
    out=$(mktemp)
    pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n -f insert_replies.sql -c 32 -j 2 -T "$SECS" \
        -D users="$users" -D topics="$topics" -D rows="$rows" "$DB" > "$out" 2>&1 &
    pid=$!
    sleep 2
    backends=$(sql -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgbench'")
    pgb=$(pgrep -P $$ -x pgbench || true)
    b0=$(cpu $backends); g0=$(cpu $pgb); c0=$(commits)
    sleep $((SECS - 4))
    b1=$(cpu $backends); g1=$(cpu $pgb); c1=$(commits)
    wait "$pid"
    read -r r1 w1 <<< "$(wal)"
    [ "$variant" = bare ] && sql -c "ALTER TABLE forum_replies ENABLE TRIGGER USER"
    local txns tps; txns=$(grep -oP 'actually processed: \K[0-9]+' "$out"); tps=$(grep -oP 'tps = \K[0-9.]+' "$out")
    n=$(((c1 - c0) * rows)); txns=$((txns * rows))
    printf '%-4s x%-3d %8.0f replies/s | WAL per reply %5d bytes, %2d records | CPU per reply: backends %4d µs, pgbench %3d µs\n' \
        "$variant" "$rows" "$(echo "$tps * $rows" | bc)" $(((w1 - w0) / txns)) $(((r1 - r0) / txns)) \
        $(((b1 - b0) * 1000000 / tick / n)) $(((g1 - g0) * 1000000 / tick / n))
    rm -f "$out"
}

echo "# reply insert anatomy, $(date -u +%FT%TZ), $(nproc) cores, 32 clients, ${SECS}s per run, copy of $FROM"
for round in $(seq 1 "$ROUNDS"); do
    echo "## round $round"
    for variant in bare all; do
        run "$variant" 1
        run "$variant" "$ROWS"
    done
done
