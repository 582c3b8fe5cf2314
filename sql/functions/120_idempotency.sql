-- Idempotency keys (migration 020): claiming a key, remembering an answer,
-- and the sweep.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Claims (p_user, p_key) for a request whose hash is p_hash, inside the
-- caller's transaction. Returns no row when the key is new (or its 24 hours
-- are over): the caller writes, then remembers the answer with
-- idempotency_remember before it commits. Otherwise one row: the hash of the
-- request that used the key first and its stored answer. A request still
-- running with the same key holds the row's lock until it ends; the claim
-- waits for it, 2 s at most (then 55P03: the proxy answers 409).
CREATE OR REPLACE FUNCTION veritable.idempotency_claim(p_user bigint, p_key text, p_hash bytea, p_keep interval)
RETURNS TABLE (request_hash bytea, status smallint, body text) LANGUAGE plpgsql
SET lock_timeout = '2s' AS $$
BEGIN
    INSERT INTO public.idempotency_keys AS k (user_id, key, request_hash)
    VALUES (p_user, p_key, p_hash)
    ON CONFLICT (user_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, created_at = now()
        WHERE k.created_at < now() - p_keep;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT k.request_hash, k.status, k.body FROM public.idempotency_keys k
                  WHERE k.user_id = p_user AND k.key = p_key;
END $$;

-- Idempotency keys past their 24 hours (migration 020), removed by the same
-- housekeeping; at most p_batch rows per call so one call never holds the
-- table.
CREATE OR REPLACE FUNCTION veritable.idempotency_sweep(p_older_than interval, p_batch integer DEFAULT 10000)
RETURNS bigint LANGUAGE sql AS $$
    WITH old AS (
        SELECT user_id, key FROM public.idempotency_keys
         WHERE created_at < now() - p_older_than ORDER BY created_at LIMIT p_batch
    ), gone AS (
        DELETE FROM public.idempotency_keys k USING old WHERE (k.user_id, k.key) = (old.user_id, old.key) RETURNING 1
    )
    SELECT count(*) FROM gone;
$$;
