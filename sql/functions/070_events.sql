-- The events outbox: sequencing and pruning.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Returns the newest seq stamped by this call, or NULL when there was
-- nothing to stamp (or another sequencer was busy).
--
-- Every row still unstamped sorts after the newest stamped one in (xid, id):
-- a row whose xid was below an earlier call's horizon had finished then and
-- was stamped (in (xid, id) order, up to the batch), and every later xid is
-- above all stamped ones. So the scan seeks past that row instead of walking
-- the index from its start, where stamped rows leave entries until vacuum
-- (a walk measured at 1.9 s, then past the 10 s statement timeout, at 4,000
-- events/s on a freshly seeded database).
--
-- Planned at every call (force_custom_plan): a proxy's first calls come when
-- the outbox is empty and analyzed as empty, and the generic plan PL/pgSQL
-- cached from them (a nested loop over a seq scan, every row estimated at 1)
-- became quadratic as rows arrived: 0.5 s, 2.3 s, then the 10 s statement
-- timeout within 15 s of a fresh database's first load, until autovacuum's
-- ANALYZE replaced it. Planning at each call costs about a tenth of a
-- millisecond; the plans follow the table's real size.
--
-- Merge joins are never considered (enable_mergejoin = off): costing one for
-- the stamp's join on `id` makes the planner read the true lowest `id` from
-- the primary key, walking every entry the pruner deleted and vacuum has not
-- yet removed, all of them at that end. On a database pruning an hour's
-- backlog that walk was 451 buffers and 4-14 ms of every call, about a fifth
-- of PostgreSQL's CPU under posts alone (perf: mergejoinscansel under
-- GetCachedPlan); without it the call reads 40 buffers (BENCHMARKS.md). No
-- plan changes: a merge join was never chosen, only costed (the stamp is a
-- nested loop of point lookups, or a hash join over a large backlog).
CREATE OR REPLACE FUNCTION veritable.sequence_events(p_batch integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan SET enable_mergejoin = off AS $$
DECLARE
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    last_seq bigint;
    last_xid xid8;
    last_id bigint;
    stamped bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('veritable.sequence_events')) THEN
        RETURN NULL;
    END IF;
    SELECT seq, xid, id INTO last_seq, last_xid, last_id
      FROM public.events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    WITH ready AS (
        SELECT id, row_number() OVER (ORDER BY xid, id) AS n
          FROM public.events
         WHERE seq IS NULL AND xid < horizon
           AND (xid, id) > (coalesce(last_xid, '0'::xid8), coalesce(last_id, 0))
         ORDER BY xid, id
         LIMIT p_batch
    )
    UPDATE public.events e SET seq = coalesce(last_seq, 0) + ready.n FROM ready WHERE e.id = ready.id;
    GET DIAGNOSTICS stamped = ROW_COUNT;
    IF stamped = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('veritable_events', (coalesce(last_seq, 0) + stamped)::text);
    RETURN coalesce(last_seq, 0) + stamped;
END $$;

-- Old events: a client further behind than the backlog gets `resync`. At most
-- p_batch rows per call, oldest first, so one call never holds the outbox or
-- floods the WAL (a first prune of an hour's backlog, about 400k rows, took
-- 1.4 s in one statement and made writers wait). The caller repeats while a
-- full batch comes back.
--
-- Stamps are gap-free and pruning takes them from the bottom, so the oldest
-- seq and the newest old one within the batch are found by bisection with
-- point lookups, and the delete is one range of the seq index starting at the
-- oldest. Scanning from the index's start instead walks the entries of rows
-- deleted since the last vacuum, and a LIMIT scan filtered on created_at
-- walks every recent row when fewer than a batch are old: batches of the
-- earlier version took up to 1.29 s in a soak. The newest stamped event is
-- never pruned, so the sequence goes on from it after a quiet hour instead of
-- starting again at 1 under the proxies' cursors.
--
-- Nor is an event a live listener has not read: events above the lowest
-- cursor in listener_cursors (migration 021) stay, however old. A listener
-- whose row was not refreshed within p_older_than is gone (its proxy died or
-- lost the database for longer than the backlog promises): its row is
-- removed and it holds nothing back; if it comes back it finds the gap and
-- tells its subscribers to resync (proxy/src/realtime/listener.rs).
DROP FUNCTION IF EXISTS veritable.prune_events(interval);
CREATE OR REPLACE FUNCTION veritable.prune_events(p_older_than interval, p_batch integer DEFAULT 5000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - p_older_than;
    lo bigint := 1;
    hi bigint;
    mid bigint;
    newest bigint;
    oldest bigint;
    unread bigint;
    gone bigint;
BEGIN
    DELETE FROM public.listener_cursors WHERE seen_at < cutoff;
    SELECT max(seq) INTO newest FROM public.events WHERE seq IS NOT NULL;
    IF newest IS NULL THEN
        RETURN 0;
    END IF;
    -- The first event some live listener has not read.
    SELECT min(c.seq) + 1 INTO unread FROM public.listener_cursors c;
    hi := newest;
    -- The oldest stamped event: the least seq that exists.
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        IF EXISTS (SELECT 1 FROM public.events WHERE seq = mid) THEN hi := mid; ELSE lo := mid + 1; END IF;
    END LOOP;
    oldest := lo;
    -- The newest old one among the next p_batch (oldest - 1: none). The
    -- newest stamped event always stays: the sequencer continues from it.
    lo := oldest - 1;
    hi := least(oldest + greatest(p_batch, 1) - 1, newest - 1, coalesce(unread - 1, newest - 1));
    WHILE lo < hi LOOP
        mid := lo + (hi - lo + 1) / 2;
        IF coalesce((SELECT e.created_at < cutoff FROM public.events e WHERE e.seq = mid), false) THEN
            lo := mid;
        ELSE
            hi := mid - 1;
        END IF;
    END LOOP;
    IF lo < oldest THEN
        RETURN 0;
    END IF;
    DELETE FROM public.events WHERE seq IS NOT NULL AND seq BETWEEN oldest AND lo;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;
