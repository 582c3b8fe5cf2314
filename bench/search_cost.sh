#!/usr/bin/env bash
# What one search costs in PostgreSQL without the proxy's time budget: a
# scratch database (migrated, small seed) gets 500 replies of 100 KB that
# match, and the release proxy, run with a 60 s search budget, is asked three
# searches through its API (the statement it really runs), timed by curl.
#
#   cargo build --release -p veritable-proxy && bench/search_cost.sh
set -euo pipefail
cd "$(dirname "$0")"
PORT=${VERITABLE_PG_PORT:-54329}
DB=bench_search
BIN=../target/release/veritable-proxy
ADDR=127.0.0.1:18091
URL="postgres://veritable@127.0.0.1:$PORT/$DB"
psql_() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable "$@"; }
psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'kill $PID 2>/dev/null || true; psql_ -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
PID=
"$BIN" migrate --database-url "$URL" > /dev/null
"$BIN" seed --scale small --database-url "$URL" > /dev/null
psql_ -d "$DB" -c "SET statement_timeout = 0" \
      -c "INSERT INTO forum_replies (topic_id, author_id, body)
          SELECT 3, 1, repeat('zebra stripes and more stripes ', 3200) FROM generate_series(1, 500)" -c "ANALYZE forum_replies"
RUST_LOG=warn VERITABLE_SEARCH_TIMEOUT_MS=60000 "$BIN" serve --database-url "$URL" --addr "$ADDR" > /dev/null 2>&1 &
PID=$!
until curl -sf "http://$ADDR/healthz" > /dev/null; do sleep 0.1; done
echo "# search cost without a budget, $(date -u +%FT%TZ), 500 candidates of 100 KB"
for q in 'zebra+stripes' 'zebra+stripes' '%22zebra+stripes+and+more%22'; do
    curl -s -o /dev/null -w "q=$q: HTTP %{http_code} in %{time_total} s\n" "http://$ADDR/api/v1/search?q=$q"
done
