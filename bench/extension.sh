#!/usr/bin/env bash
# Benchmarks of the veritable extension, side by side in one run.
#
#   cargo xtask seed default && cargo xtask seed medium   # once: the data
#   bench/extension.sh                                    # ~4 minutes
#
# pgbench runs on this machine against the private cluster (127.0.0.1), so the
# load generator and PostgreSQL share the two cores. Latencies are per
# transaction from pgbench's log (-l), one client unless said otherwise.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-10}
DEFAULT_DB=veritable_default
MEDIUM_DB=veritable_medium
pgb() { pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n "$@"; }
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$1" -c "$2"; }

# latency DB SCRIPT [pgbench args...]: p50/p99 of one client, and its TPS.
latency() {
    local db=$1 script=$2; shift 2
    local dir; dir=$(mktemp -d)
    (cd "$dir" && pgb -f "$OLDPWD/$script" -c 1 -T "$SECS" -l --log-prefix=lat "$@" "$db" > out.txt 2>&1) || { cat "$dir/out.txt"; exit 1; }
    local tps; tps=$(grep -oP 'tps = \K[0-9.]+' "$dir/out.txt" | head -1)
    cat "$dir"/lat.* | awk '{print $3}' | sort -n | awk -v name="$script" -v db="$db" -v tps="$tps" \
        '{a[NR]=$1} END {printf "%-22s %-18s p50 %7.3f ms  p99 %7.3f ms  (%d calls, %s/s)\n", name, db, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, NR, tps}'
    rm -rf "$dir"
}

# throughput DB SCRIPT CLIENTS [pgbench args...]: TPS only.
throughput() {
    local db=$1 script=$2 clients=$3; shift 3
    pgb -f "$script" -c "$clients" -j 2 -T "$SECS" "$@" "$db" 2>&1 | grep -oP 'tps = \K[0-9.]+' | head -1
}

echo "# veritable extension benchmarks, $(date -u +%FT%TZ), $(nproc) cores, ${SECS}s per run"
for db in $DEFAULT_DB $MEDIUM_DB; do
    sql "$db" "SELECT 1" > /dev/null || { echo "database $db missing: run cargo xtask seed ${db#veritable_}"; exit 1; }
done

# Earlier insert runs leave dead index entries where page 1 reads; start clean.
for db in $DEFAULT_DB $MEDIUM_DB; do sql "$db" "VACUUM ANALYZE forum_topic_stats" > /dev/null; done

echo; echo "## topic_page (20 topics), flat in data size: default (1M replies) vs medium (100k)"
for round in 1 2; do
    for db in $DEFAULT_DB $MEDIUM_DB; do
        latency "$db" topic_page_first.sql
        latency "$db" topic_page_all.sql
    done
done
# A cursor 1,000 pages deep (row 20,000 in all-categories order).
deep=$(sql $DEFAULT_DB "SELECT 't1.' || is_pinned::int || '.' || ((extract(epoch FROM last_activity_at) - 946684800) * 1000000)::bigint || '.' || topic_id
                          FROM forum_topic_stats WHERE NOT is_deleted ORDER BY is_pinned DESC, last_activity_at DESC, topic_id DESC OFFSET 19999 LIMIT 1")
latency $DEFAULT_DB topic_page_deep.sql -D "deep_cursor='$deep'"
echo "topic_page at 32 clients (default): $(throughput $DEFAULT_DB topic_page_first.sql 32) tps"

echo; echo "## reply_tree with the default caps (depth 10, 500 rows), default data"
hot=$(sql $DEFAULT_DB "SELECT topic_id FROM forum_topic_stats WHERE reply_count BETWEEN 49000 AND 51000 ORDER BY topic_id LIMIT 1")
chain=$(sql $DEFAULT_DB "SELECT topic_id FROM forum_replies GROUP BY topic_id ORDER BY max(depth) DESC LIMIT 1")
echo "hot topic $hot: $(sql $DEFAULT_DB "SELECT reply_count FROM forum_topic_stats WHERE topic_id = $hot") replies; chain topic $chain: depth $(sql $DEFAULT_DB "SELECT max(depth) + 1 FROM forum_replies WHERE topic_id = $chain")"
latency $DEFAULT_DB reply_tree_hot.sql -D hot_topic="$hot"
latency $DEFAULT_DB reply_tree_chain.sql -D chain_topic="$chain"

echo; echo "## sanitize_html"
sql $DEFAULT_DB "CREATE TABLE IF NOT EXISTS bench_docs (name text PRIMARY KEY, html text NOT NULL)" > /dev/null
sql $DEFAULT_DB "INSERT INTO bench_docs VALUES
  ('payload', '<script>' || repeat('(', 500) || repeat(')', 500) || '</script>'),
  ('forum', repeat('<p>Thanks for the <strong>detailed</strong> write-up! I tried the <a href=\"https://example.test/docs/indexes\">covering index</a> approach and it <em>halved</em> our p99.</p>
<blockquote><p>Does this work with <code>pgbouncer</code> in transaction mode?</p></blockquote>
<ul><li>yes, with unnamed statements</li><li>no, if you rely on <code>LISTEN</code></li></ul>
<pre><code>SELECT * FROM veritable.topic_page(NULL, NULL, 20);</code></pre>
<p onclick=\"steal()\">Also: <img src=x onerror=alert(1)> <a href=\"javascript:alert(1)\">click</a></p>
', 16))
  ON CONFLICT (name) DO UPDATE SET html = EXCLUDED.html" > /dev/null
forum_bytes=$(sql $DEFAULT_DB "SELECT octet_length(html) FROM bench_docs WHERE name = 'forum'")
latency $DEFAULT_DB sanitize_payload.sql
line=$(latency $DEFAULT_DB sanitize_forum.sql); echo "$line"
tps=$(echo "$line" | grep -oP '\(\d+ calls, \K[0-9.]+')
echo "forum HTML: $forum_bytes bytes per call -> $(awk -v t="$tps" -v b="$forum_bytes" 'BEGIN {printf "%.1f", t*b/1e6}') MB/s on one backend"
tps2=$(throughput $DEFAULT_DB sanitize_forum.sql 2)
echo "forum HTML, 2 clients: $(awk -v t="$tps2" -v b="$forum_bytes" 'BEGIN {printf "%.1f", t*b/1e6}') MB/s"
# The function alone, without a round trip per call: 200 documents in one statement.
ms=$(psql -X -q -h 127.0.0.1 -p "$PORT" -U veritable -d $DEFAULT_DB -c '\timing on' \
     -c "SELECT sum(length(veritable.sanitize_html(d.html || g::text))) FROM bench_docs d, generate_series(1, 200) g WHERE d.name = 'forum'" \
     | grep -oP 'Time: \K[0-9.]+')
echo "forum HTML, function only (200 docs in one statement, one backend): $(awk -v ms="$ms" -v b="$forum_bytes" 'BEGIN {printf "%.1f", 200*b/1e6/(ms/1000)}') MB/s"

# Before each insert run: vacuum what the last run wrote and merge the GIN
# pending lists, so no run pays for its predecessor's maintenance (autovacuum
# of 50,000 bare inserts used to land in the triggered run that followed).
settle() {
    psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$1" -c "SET statement_timeout = 0" \
        -c "VACUUM forum_replies, events, unified_activity, forum_topic_participants, forum_topic_stats" \
        -c "SELECT gin_clean_pending_list('forum_replies_search_idx'::regclass)" > /dev/null
}

echo; echo "## reply insert at 32 clients: all triggers vs the bare insert of the same row (triggers off), alternating"
users=$(sql $DEFAULT_DB "SELECT count(*) FROM users"); topics=$(sql $DEFAULT_DB "SELECT count(*) FROM forum_topics")
bare=(); full=()
for round in 1 2 3; do
    settle $DEFAULT_DB
    sql $DEFAULT_DB "ALTER TABLE forum_replies DISABLE TRIGGER USER" > /dev/null
    bare+=("$(throughput $DEFAULT_DB insert_reply.sql 32 -D users="$users" -D topics="$topics")")
    sql $DEFAULT_DB "ALTER TABLE forum_replies ENABLE TRIGGER USER" > /dev/null
    settle $DEFAULT_DB
    full+=("$(throughput $DEFAULT_DB insert_reply.sql 32 -D users="$users" -D topics="$topics")")
    echo "round $round: bare ${bare[-1]} tps, with triggers ${full[-1]} tps"
done
sql $DEFAULT_DB "ALTER TABLE forum_replies ENABLE TRIGGER USER" > /dev/null
mb=$(printf '%s\n' "${bare[@]}" | sort -n | sed -n 2p); mf=$(printf '%s\n' "${full[@]}" | sort -n | sed -n 2p)
echo "median: bare $mb tps, with triggers $mf tps, ratio $(awk -v f="$mf" -v b="$mb" 'BEGIN {printf "%.2f", f/b}')"
# Rows inserted with triggers off have no counters: put them right.
# It reads every reply (20 s on 1M): past the role's 10 s statement timeout.
fixed=$(psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d $DEFAULT_DB -c "SET statement_timeout = 0" -c "SELECT veritable.reconcile_topic_stats()")
echo "reconcile after the bare runs fixed $fixed rows"
