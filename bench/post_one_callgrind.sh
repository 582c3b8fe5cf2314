#!/usr/bin/env bash
# PostgreSQL's instructions per lone reply post, repeatable whatever else the
# machine does (BENCHMARKS.md, "2026-12-07: the lone post met"): a single-user
# backend of the private cluster under callgrind runs the statement as the
# proxy sends it (PREPARE, then EXECUTE with one reply) 201 times and once;
# the difference over 200 is one post, start-up and the first plans left out.
#
#   bench/post_one_callgrind.sh [DB]     # ~1 minute; stops the cluster meanwhile
#
# DB defaults to veritable_default. To compare with another build, install its
# functions in a copy of the database (bench/write_path.sh makes
# veritable_before) and run this on each; for the landed build's statement set
# STATEMENT=old (its REPLY_CREATE with row triggers).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-veritable_default}
DATA=$PWD/target/pg/data
PG=/usr/lib/postgresql/15/bin
OUT=$(mktemp -d)
chown postgres "$OUT"
topics=$(psql -X -A -t -h 127.0.0.1 -p "${VERITABLE_PG_PORT:-54329}" -U veritable -d "$DB" -c "SELECT max(id) FROM forum_topics")
users=$(psql -X -A -t -h 127.0.0.1 -p "${VERITABLE_PG_PORT:-54329}" -U veritable -d "$DB" -c "SELECT max(id) FROM users")
python3 - "$OUT" "$topics" "$users" "${STATEMENT:-new}" <<'PY'
import random, sys
out, topics, users, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = "A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?"
reply = ("json_build_object('id', r.id, 'topic_id', r.topic_id, 'parent_id', r.parent_id, 'depth', r.depth, "
         "'author_id', r.author_id, 'body', r.body, 'body_html', r.body_html, 'is_deleted', r.is_deleted, "
         "'created_at', r.created_at, 'edited_at', r.edited_at)::text")
prepare = {
    "new": "PREPARE p(int8[],int8[],int8[],text[],text[],int4,bool) AS SELECT wait, is_locked, parent_ok, reply, "
           "category_id, held FROM veritable.post_replies($1, $2, $3, $4, $5, $6, $7)",
    "old": "PREPARE p(int8,int8,int8,text,text,int4) AS WITH limited AS (SELECT veritable.rate_limit($5, $6, "
           "interval '1 minute') AS wait), inserted AS (INSERT INTO forum_replies AS r (topic_id, parent_id, "
           "author_id, body) SELECT t.id, $2, $3, $4 FROM forum_topics t, limited WHERE limited.wait = 0 AND "
           "t.id = $1 AND NOT t.is_deleted AND NOT t.is_locked RETURNING " + reply + " AS reply) SELECT (SELECT "
           "wait FROM limited), (SELECT is_locked FROM forum_topics WHERE id = $1 AND NOT is_deleted), "
           "(SELECT reply FROM inserted)",
}[kind]
for n in (1, 201):
    random.seed(1)
    lines = [prepare]
    for _ in range(n):
        t, a = random.randint(1, topics), random.randint(4, users)
        if kind == "new":
            lines.append(f"EXECUTE p(ARRAY[{t}], ARRAY[NULL]::int8[], ARRAY[{a}], ARRAY['{body}'], "
                         f"ARRAY['post:user:bench{a}'], 100000000, true)")
        else:
            lines.append(f"EXECUTE p({t}, NULL, {a}, '{body}', 'post:user:bench{a}', 100000000)")
    open(f"{out}/{n}.sql", "w").write("\n".join(lines) + "\n")
PY
runuser -u postgres -- "$PG/pg_ctl" -D "$DATA" -w stop > /dev/null
trap 'runuser -u postgres -- "$PG/pg_ctl" -D "$DATA" -l "$DATA/../postgres.log" -w start > /dev/null' EXIT
count() {
    runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$OUT/$1.out" \
        "$PG/postgres" --single -D "$DATA" "$DB" < "$OUT/$1.sql" > "$OUT/$1.log" 2>&1
    if grep -m1 ERROR "$OUT/$1.log"; then exit 1; fi
    grep -o 'Collected : [0-9]*' "$OUT/$1.log" | awk '{print $3}'
}
many=$(count 201)
one=$(count 1)
echo "$DB (${STATEMENT:-new}): $(( (many - one) / 200 )) instructions per post; profiles in $OUT"
