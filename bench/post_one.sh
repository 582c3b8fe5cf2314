#!/usr/bin/env bash
# A lone reply's cost in PostgreSQL: this tree's veritable.post_replies and
# reply trigger against their definitions at an earlier commit (BEFORE,
# default HEAD), one reply per
# call, one client, in turns on one database (each run adds replies, hence
# the pairing; compare the paired ratios).
#
#   BEFORE=<commit> bench/post_one.sh     # ~2 minutes
#
# The earlier definitions are installed beside the current ones as
# veritable.post_replies_before and veritable.replies_inserted_before, and
# dropped at the end (the table's trigger is left on the current one). Runs both the way a
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

# Both functions a post runs are taken from BEFORE: the batch function and
# the replies' statement trigger (swapped in on the table around each run).
git show "$BEFORE:sql/functions/020_replies.sql" | python3 -c '
import sys
s = sys.stdin.read()
for name in ("post_replies", "replies_inserted"):
    a = s.index("CREATE OR REPLACE FUNCTION veritable." + name + "(")
    b = s.index("END $$;", a) + len("END $$;")
    print(s[a:b].replace("veritable." + name + "(", "veritable." + name + "_before(", 1))' | sql > /dev/null
trigger() {
    sql -c "CREATE OR REPLACE TRIGGER forum_replies_inserted AFTER INSERT ON forum_replies
            REFERENCING NEW TABLE AS new_replies FOR EACH STATEMENT EXECUTE FUNCTION veritable.$1()" > /dev/null
}
trap 'trigger replies_inserted; sql -c "DROP FUNCTION IF EXISTS veritable.post_replies_before;
      DROP FUNCTION IF EXISTS veritable.replies_inserted_before" > /dev/null' EXIT

topics=$(sql -c "SELECT max(id) FROM forum_topics")
users=$(sql -c "SELECT max(id) FROM users")
run() {
    if [ "$1" = post_replies_before ]; then trigger replies_inserted_before; else trigger replies_inserted; fi
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
