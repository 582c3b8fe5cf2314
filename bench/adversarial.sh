#!/usr/bin/env bash
# The sanitizer against adversarial input, and how fast a cancel stops it.
#
#   bench/adversarial.sh            # after `cargo xtask test` or `cargo xtask up`
#
# 1. Native: every shape of core's corpus at the 100 KB limit, release build,
#    7 calls each (median and slowest).
# 2. In PostgreSQL: the same shapes through veritable.sanitize_html /
#    render_markdown, 5 calls each, timed inside the backend (no round trip).
# 3. Cancellation: a 1 s statement_timeout on a statement of many calls, and
#    a 50 ms one on a single 1 MB call.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${VERITABLE_PG_PORT:-54329}
DB=${BENCH_DB:-veritable_test}
psql_() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U veritable -d "$DB" "$@"; }

echo "# adversarial sanitizer benchmark, $(date -u +%FT%TZ), $(nproc) cores"
echo; echo "## native (cargo run --release -p veritable-core --example adversarial)"
cargo run -q --release -p veritable-core --example adversarial

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run -q --release -p veritable-core --example adversarial -- --dump "$dir" > "$dir/index.tsv"
psql_ -c "DROP TABLE IF EXISTS bench_adversarial; CREATE TABLE bench_adversarial (n int, name text, format text, body text)"
while IFS=$'\t' read -r file name; do
    n=$(basename "$file" | cut -d. -f1); format=${file##*.}
    echo "INSERT INTO bench_adversarial VALUES (:'n', :'name', :'format', :'body')" |
        psql_ -v n="$n" -v name="$name" -v format="$format" -v body="$(cat "$file")"
done < "$dir/index.tsv"

echo; echo "## in PostgreSQL: slowest of 5 calls per shape, inside the backend"
psql_ -F $'\t' <<'SQL'
CREATE OR REPLACE FUNCTION pg_temp.time_shape(body text, format text) RETURNS TABLE (max_ms float8, outcome text) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; worst float8 := 0; result text := '';
BEGIN
    FOR i IN 1..5 LOOP
        t0 := clock_timestamp();
        BEGIN
            IF format = 'html' THEN
                result := 'ok ' || octet_length(veritable.sanitize_html(body)) || ' B';
            ELSE
                result := 'ok ' || octet_length(veritable.render_markdown(body)) || ' B';
            END IF;
        EXCEPTION WHEN OTHERS THEN result := SQLSTATE;
        END;
        worst := greatest(worst, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RETURN QUERY SELECT worst, result;
END $$;
SELECT rpad(name, 32), format, to_char(t.max_ms, '990.00') || ' ms', t.outcome
  FROM bench_adversarial, pg_temp.time_shape(body, format) t ORDER BY n;
SELECT 'slowest call in PostgreSQL: ' || to_char(max(t.max_ms), '990.00') || ' ms'
  FROM bench_adversarial, pg_temp.time_shape(body, format) t;
SQL

echo; echo "## cancellation"
doc="SELECT repeat(body, 10) FROM bench_adversarial WHERE name = 'forum post'"
psql_ -c "SET veritable.max_content_bytes = 1000000" -c '\timing on' \
      -c "SELECT octet_length(veritable.sanitize_html(($doc)))" | grep -oP 'Time: \K.*' | sed 's/^/one 1 MB call, no timeout: /'
psql_ -c "SET veritable.max_content_bytes = 1000000" -c "SET statement_timeout = '50ms'" -c '\timing on' \
      -c "SELECT octet_length(veritable.sanitize_html(($doc)))" 2>&1 | grep -oP 'Time: \K.*|ERROR.*' | tr '\n' ' ' | sed 's/^/one 1 MB call, 50 ms statement_timeout: /' || true; echo
psql_ -c "SET veritable.max_content_bytes = 1000000" -c "SET statement_timeout = '1s'" -c '\timing on' \
      -c "SELECT count(veritable.sanitize_html(($doc) || g)) FROM generate_series(1, 1000) g" 2>&1 | grep -oP 'Time: \K.*|ERROR.*' | tr '\n' ' ' | sed 's/^/1,000 calls of 1 MB, 1 s statement_timeout: /' || true; echo
psql_ -c "DROP TABLE bench_adversarial"
