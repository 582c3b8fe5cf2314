-- The events outbox: sequencing and pruning.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Returns the newest seq stamped by this call, or NULL when there was
-- nothing to stamp (or another sequencer was busy).
CREATE OR REPLACE FUNCTION veritable.sequence_events(p_batch integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    last_seq bigint;
    stamped bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('veritable.sequence_events')) THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(max(seq), 0) INTO last_seq FROM public.events WHERE seq IS NOT NULL;
    WITH ready AS (
        SELECT id, row_number() OVER (ORDER BY xid, id) AS n
          FROM public.events
         WHERE seq IS NULL AND xid < horizon
         ORDER BY xid, id
         LIMIT p_batch
    )
    UPDATE public.events e SET seq = last_seq + ready.n FROM ready WHERE e.id = ready.id;
    GET DIAGNOSTICS stamped = ROW_COUNT;
    IF stamped = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('veritable_events', (last_seq + stamped)::text);
    RETURN last_seq + stamped;
END $$;

-- Old events: a client further behind than the backlog gets `resync`. At most
-- p_batch rows per call, oldest first (the seq index), so one call never holds
-- the outbox or floods the WAL: a first prune of an hour's backlog (about 400k
-- rows) took 1.4 s in one statement and made writers wait. The caller repeats
-- while a full batch comes back.
DROP FUNCTION IF EXISTS veritable.prune_events(interval);
CREATE OR REPLACE FUNCTION veritable.prune_events(p_older_than interval, p_batch integer DEFAULT 5000)
RETURNS bigint LANGUAGE sql AS $$
    WITH old AS (
        SELECT id FROM public.events
         WHERE seq IS NOT NULL AND created_at < now() - p_older_than
         ORDER BY seq
         LIMIT p_batch
    ), gone AS (
        DELETE FROM public.events e USING old WHERE e.id = old.id RETURNING 1
    )
    SELECT count(*) FROM gone;
$$;
