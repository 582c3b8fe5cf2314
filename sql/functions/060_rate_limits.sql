-- Rate limits kept in PostgreSQL, shared by every proxy.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Counts one hit for each element of `p_keys` (a key may repeat); returns,
-- for each element by its position, 0 when that hit is within `p_max` hits
-- per `p_window`, else the seconds until the window ends (for Retry-After).
-- A NULL element is not counted and gets no row (a held post, 020_replies).
-- One upsert per distinct key, in key order, so a proxy's batch of posts
-- charges its authors in one statement without deadlocking another batch.
-- PL/pgSQL rather than SQL so that its plan is cached per session: an SQL
-- function's statements are planned again at every call (a one-row post
-- cost 0.94 ms instead of 0.69 at one client).
CREATE OR REPLACE FUNCTION veritable.rate_limit_many(p_keys text[], p_max integer, p_window interval)
RETURNS TABLE (pos bigint, wait integer) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH hit AS (
        SELECT k.key, k.n AS at, row_number() OVER (PARTITION BY k.key ORDER BY k.n) AS nth,
               count(*) OVER (PARTITION BY k.key) AS hits
          FROM unnest(p_keys) WITH ORDINALITY AS k(key, n)
         WHERE k.key IS NOT NULL
    ), counted AS (
        INSERT INTO public.rate_limits AS r (key, window_start, hits)
        SELECT hit.key, now(), max(hit.hits)::integer FROM hit GROUP BY hit.key ORDER BY hit.key
        ON CONFLICT (key) DO UPDATE SET
            window_start = CASE WHEN r.window_start + p_window <= now() THEN now() ELSE r.window_start END,
            hits = CASE WHEN r.window_start + p_window <= now() THEN EXCLUDED.hits ELSE r.hits + EXCLUDED.hits END
        RETURNING r.key, r.hits AS total, r.window_start
    )
    SELECT hit.at,
           CASE WHEN counted.total - hit.hits + hit.nth > p_max
                THEN greatest(1, ceil(extract(epoch FROM counted.window_start + p_window - now())))::integer
                ELSE 0 END
      FROM hit JOIN counted ON counted.key = hit.key
     ORDER BY hit.at;
END $$;

-- One hit of `p_key`: 0 within the limit, else the seconds to wait. The
-- same rule as rate_limit_many for one key, as one upsert on that key: no
-- window function, sort or join (a lone post calls this, 020_replies). A
-- NULL key is not counted (NULL), as in rate_limit_many.
CREATE OR REPLACE FUNCTION veritable.rate_limit(p_key text, p_max integer, p_window interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    wait integer;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.rate_limits AS r (key, window_start, hits)
    VALUES (p_key, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        window_start = CASE WHEN r.window_start + p_window <= now() THEN now() ELSE r.window_start END,
        hits = CASE WHEN r.window_start + p_window <= now() THEN 1 ELSE r.hits + 1 END
    RETURNING CASE WHEN r.hits > p_max
                   THEN greatest(1, ceil(extract(epoch FROM r.window_start + p_window - now())))::integer
                   ELSE 0 END
    INTO wait;
    RETURN wait;
END $$;

-- Old windows, removed by the proxies' housekeeping so the table stays small.
CREATE OR REPLACE FUNCTION veritable.rate_limit_sweep(p_older_than interval) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM public.rate_limits WHERE window_start < now() - p_older_than RETURNING 1)
    SELECT count(*) FROM gone;
$$;
