-- The realtime sequencer: stamps a gap-free `seq` on the outbox rows whose
-- writers have finished, in (xid, id) order, and wakes the proxies with one
-- NOTIFY per batch (never from the writers' own transactions: DESIGN.md).
--
-- Commit-safe: a row is stamped only when its xid is below the xmin of a
-- snapshot taken first, so every transaction that could still add a row with
-- a lower xid has ended; a writer that commits late is stamped late, never
-- skipped. One sequencer at a time (a transaction-level advisory lock; a
-- second caller returns NULL at once), so stamps of one call all follow the
-- previous call's, and readers of `seq > cursor` never see a hole.

SET LOCAL search_path = public;

-- Returns the newest seq stamped by this call, or NULL when there was
-- nothing to stamp (or another sequencer was busy).
CREATE FUNCTION veritable.sequence_events(p_batch integer DEFAULT 10000) RETURNS bigint
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

-- Old events: a client further behind than the backlog gets `resync`.
CREATE FUNCTION veritable.prune_events(p_older_than interval) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM public.events WHERE seq IS NOT NULL AND created_at < now() - p_older_than RETURNING 1
    )
    SELECT count(*) FROM gone;
$$;
