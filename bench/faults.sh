#!/usr/bin/env bash
# Fault runs (RELIABILITY.md, "Faults"): a write load through the release
# proxy on `default` data with WebSocket readers resuming by `since`, and one
# fault in the middle of it, repeated RUNS times. Each run passes only with
# every acknowledged reply found in the database by id, 0 events missed by the
# readers and no 500; the table gives the 503s, their slowest answer, and
# the seconds the clients saw errors (from the first second with an error or
# without a 2xx to the last one: the fault lasts FAULT_DOWN of them).
#
#   cargo xtask seed default
#   bench/faults.sh pg-kill [RUNS]     # kill -9 of PostgreSQL (postmaster and backends), restarted 4 s later
#   bench/faults.sh terminate [RUNS]   # pg_terminate_backend of 2 random pool connections and the listener, every 2 s
#
# Never run it beside tests or other benchmarks: it kills the private cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
FAULT=${1:?pg-kill or terminate}
RUNS=${2:-10}
PORT=${VERITABLE_PG_PORT:-54329}
DATA=target/pg/data
SECS=${FAULT_SECS:-30}
AT=${FAULT_AT:-6}
DOWN=${FAULT_DOWN:-4}
pg_bin=$(pg_config --bindir)
as_super() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }

# PostgreSQL's own crash recovery replays the WAL written since its last
# checkpoint (up to max_wal_size, 4 GB here): each run starts right after a
# CHECKPOINT, so it replays only the run's own WAL, and the table gives the
# seconds from the restart to PostgreSQL accepting connections apart from the
# seconds the proxy then took to answer cleanly.
pg_kill() {
    local postmaster
    postmaster=$(head -1 "$DATA/postmaster.pid")
    pkill -9 -P "$postmaster" || true
    kill -9 "$postmaster"
    sleep "$DOWN"
    date +%s.%N > target/tmp/fault-restarted
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$DATA" -l target/pg/postgres.log -w -t 120 start > /dev/null 2>&1
    date +%s.%N > target/tmp/fault-ready
}

terminate() {
    date +%s.%N > target/tmp/fault-restarted
    local until=$((SECONDS + DOWN))
    while [ $SECONDS -lt $until ]; do
        as_super -c "SELECT count(pg_terminate_backend(pid)) FROM (
            (SELECT pid FROM pg_stat_activity WHERE datname = 'veritable_default'
                AND application_name = 'veritable-proxy' ORDER BY random() LIMIT 2)
            UNION ALL
            (SELECT pid FROM pg_stat_activity WHERE datname = 'veritable_default'
                AND application_name = 'veritable-listener')) t" > /dev/null
        sleep 2
    done
    date +%s.%N > target/tmp/fault-ready
}

mkdir -p target/tmp
echo "# $FAULT: $RUNS runs of ${SECS}s, the fault at ${AT}s for ${DOWN}s, $(date -u +%FT%TZ), $(nproc) cores"
echo "| run | acknowledged | lost | events owed | missed | 500s | 503s | slowest 503 | s degraded | PostgreSQL ready after restart | first clean second after ready |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
    label="fault-$FAULT-$run"
    # The fault starts AT seconds after the tool has found its targets (its sign-in
    # and socket set-up take well under a second with cached sessions).
    as_super -c CHECKPOINT > /dev/null
    rm -f target/tmp/fault-started target/tmp/fault-restarted target/tmp/fault-ready
    (
        while ! grep -q "HTTP users" "target/tmp/$label.log" 2> /dev/null; do sleep 0.2; done
        date +%s.%N > target/tmp/fault-started
        sleep "$AT"
        case "$FAULT" in
            pg-kill) pg_kill ;;
            terminate) terminate ;;
        esac
    ) &
    injector=$!
    cargo xtask load -- --duration "${SECS}s" --users 36 --sockets 4 --mix posts=100 --topics hot:8 \
        --rooms-per-socket 3 --label "$label" > "target/tmp/$label.log" 2>&1 || true
    wait "$injector" || true
    python3 - "$label" <<'PY'
import json, sys
label = sys.argv[1]
wall = lambda name: float(open(f"target/tmp/fault-{name}").read())
started, restarted, ready = wall("started"), wall("restarted"), wall("ready")
d = json.load(open(f"target/load/{label}.json"))
w, dl = d.get("writes") or {}, d.get("delivery") or {}
fails = d.get("failures", {})
s500 = sum(v for k, v in fails.items() if k.startswith("5") and k != "503")
bad = [s["t_secs"] for s in d["samples"] if s["errors_per_sec"] > 0 or s["ok_per_sec"] == 0]
degraded = (max(bad) - min(bad) + 1) if bad else 0
# The load's clock starts within a second of the line the injector waited for.
ready_t = ready - started
clean = next((s["t_secs"] for s in d["samples"] if s["t_secs"] > ready_t and s["errors_per_sec"] == 0 and s["ok_per_sec"] > 0), None)
print(f"| {label.rsplit('-', 1)[1]} | {w.get('acknowledged')} | {w.get('lost')} | {dl.get('expected')} | {dl.get('missed')} "
      f"| {s500} | {fails.get('503', 0)} | {d['shed_latency']['max_ms']:.0f} ms | {degraded:.0f} | {ready - restarted:.1f} s "
      f"| {('%.0f s' % (clean - ready_t)) if clean is not None else 'none'} |")
PY
done
