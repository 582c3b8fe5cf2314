#!/usr/bin/env bash
# A lone reply's cost in PostgreSQL: this tree's veritable.post_replies against
# the definition at an earlier commit (BEFORE, default HEAD), one reply per
# call, one client, in turns on one database (each run adds replies, hence
# the pairing; compare the paired ratios).
#
#   BEFORE=<commit> bench/post_one.sh     # ~2 minutes
#
# The earlier definition is installed beside the current one as
# veritable.post_replies_before and dropped at the end. Runs both the way a
# post that finds nothing in flight goes (p_batch true: the lock probe) and
# the way a held post goes (false). Prints pgbench's mean latency per run.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_default}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-4}
BEFORE=${BEFORE:-HEAD}
sql() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" "$@"; }

git show "$BEFORE:sql/functions/020_replies.sql" | python3 -c '
import sys
s = sys.stdin.read()
a = s.index("CREATE OR REPLACE FUNCTION veritable.post_replies(")
b = s.index("END $$;", a) + len("END $$;")
print(s[a:b].replace("veritable.post_replies(", "veritable.post_replies_before(", 1))' | sql > /dev/null
trap 'sql -c "DROP FUNCTION IF EXISTS veritable.post_replies_before" > /dev/null' EXIT

topics=$(sql -c "SELECT max(id) FROM forum_topics")
users=$(sql -c "SELECT max(id) FROM users")
run() {
    pgbench -h 127.0.0.1 -p "$PORT" -U veritable -n -M simple -f bench/post_replies_one.sql \
        -D fn="$1" -D batch="$2" -D topics="$topics" -D users="$users" -c 1 -j 1 -T "$SECS" "$DB" 2>&1 \
        | awk '/latency average/ {print $4}'
}
echo "# one reply per call, 1 client, ${SECS}s per run, $DB; before = $BEFORE; mean latency in ms"
echo "round batch before after after/before"
for round in $(seq 1 "$ROUNDS"); do
    for batch in true false; do
        if [ $((round % 2)) = 1 ]; then b=$(run post_replies_before "$batch"); a=$(run post_replies "$batch")
        else a=$(run post_replies "$batch"); b=$(run post_replies_before "$batch"); fi
        echo "$round $batch $b $a $(python3 -c "print(round($a / $b, 3))")"
    done
done
