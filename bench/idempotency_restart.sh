#!/usr/bin/env bash
# An idempotent write retried across a PostgreSQL crash (RELIABILITY.md,
# "Faults"): post a reply with an Idempotency-Key through the release proxy,
# kill -9 PostgreSQL, start it again, send the same request with the same key:
# the answer must be the first one (Idempotent-Replayed: true), and the reply
# must exist once. Uses the `veritable` database of `cargo xtask up` (or the one named).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${VERITABLE_PG_PORT:-54329}
DB=${1:-veritable}
DATA=target/pg/data
pg_bin=$(pg_config --bindir)
cargo build --release -p veritable-proxy > /dev/null 2>&1
export DATABASE_URL="postgres://veritable@127.0.0.1:$PORT/$DB"
target/release/veritable-proxy migrate > /dev/null
RUST_LOG=error target/release/veritable-proxy serve --addr 127.0.0.1:18181 &
proxy=$!
trap 'kill $proxy 2> /dev/null || true' EXIT
until curl -sf http://127.0.0.1:18181/healthz > /dev/null; do sleep 0.1; done
api=http://127.0.0.1:18181/api/v1
token=$(curl -sf -X POST $api/auth/login -H 'content-type: application/json' \
    -d '{"username":"demo","password":"veritable-demo"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
key=$(cat /proc/sys/kernel/random/uuid)
body="{\"body\":\"across a crash $key\"}"
post() { curl -s -D - -o target/tmp/idem-body -X POST "$api/forums/topics/3/replies" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -H "Idempotency-Key: $key" -d "$body"; }
mkdir -p target/tmp
first=$(post | head -1); cp target/tmp/idem-body target/tmp/idem-first
echo "first answer: $first"
postmaster=$(head -1 "$DATA/postmaster.pid")
pkill -9 -P "$postmaster" || true
kill -9 "$postmaster"
sleep 2
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$DATA" -l target/pg/postgres.log -w -t 120 start > /dev/null 2>&1
until curl -sf http://127.0.0.1:18181/healthz > /dev/null; do sleep 0.2; done
headers=$(post)
echo "retry after the crash: $(echo "$headers" | head -1), $(echo "$headers" | grep -i '^idempotent-replayed' | tr -d '\r')"
cmp -s target/tmp/idem-first target/tmp/idem-body && echo "same body: yes" || { echo "same body: NO"; exit 1; }
n=$(psql -X -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" -c "SELECT count(*) FROM forum_replies WHERE body = 'across a crash $key'")
echo "replies written: $n"
[ "$n" = 1 ] && echo "$headers" | grep -qi '^idempotent-replayed: true'
