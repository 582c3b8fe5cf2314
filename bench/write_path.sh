#!/usr/bin/env bash
# The write path side by side: this tree's release proxy and an earlier build
# (BEFORE_BIN), each on its own copy of the `default` data, alternating, with
# veritable-load (BENCHMARKS.md, "The write path").
#
#   cargo xtask seed default
#   git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release -p veritable-proxy)
#   BEFORE_BIN=/tmp/before/target/release/veritable-proxy bench/write_path.sh    # ~15 minutes
#
# The earlier build's copy is veritable_before (made once from veritable_default
# and migrated by that build, which re-applies its own function files; the
# statement-level reply trigger it does not know is dropped there).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${VERITABLE_PG_PORT:-54329}
SECS=${BENCH_SECS:-60}
ROUNDS=${BENCH_ROUNDS:-2}
BEFORE_BIN=${BEFORE_BIN:?name the veritable-proxy binary of the earlier build}
as_super() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
if [ -z "$(as_super -c "SELECT 1 FROM pg_database WHERE datname = 'veritable_before'")" ]; then
    as_super -c "CREATE DATABASE veritable_before TEMPLATE veritable_default OWNER veritable"
    "$BEFORE_BIN" migrate --database-url "postgres://veritable@127.0.0.1:$PORT/veritable_before" > /dev/null
    psql -X -q -h 127.0.0.1 -p "$PORT" -U veritable -d veritable_before \
        -c "DROP TRIGGER IF EXISTS forum_replies_inserted ON forum_replies"
fi
after() { cargo xtask load --scale default "$@" 2>&1 | sed -n '/^veritable-load `/,$p'; }
before() { cargo xtask load --scale default --database veritable_before --proxy-bin "$BEFORE_BIN" "$@" 2>&1 | sed -n '/^veritable-load `/,$p'; }

echo "# write path side by side, $(date -u +%FT%TZ), $(nproc) cores, ${SECS}s per run"
for round in $(seq 1 "$ROUNDS"); do
    for build in before after; do
        [ $((round % 2)) = 0 ] && build=$([ "$build" = before ] && echo after || echo before)
        echo; echo "## round $round, $build: reply posts only (90 users + 10 sockets)"
        "$build" -- --duration "${SECS}s" --users 100 --mix posts=90,ws=10 --label "posts-$build-$round"
        echo; echo "## round $round, $build: the seed's mix (100 users)"
        "$build" -- --duration "${SECS}s" --users 100 --label "mix-$build-$round"
    done
done
for build in before after; do
    echo; echo "## $build: one user posting, one request at a time"
    "$build" -- --duration 30s --users 1 --sockets 0 --mix posts=100 --label "single-$build"
done
