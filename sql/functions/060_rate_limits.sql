-- Rate limits kept in PostgreSQL, shared by every proxy.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Counts one hit of `p_key`; returns 0 when it is within `p_max` hits per
-- `p_window`, else the seconds until the window ends (for Retry-After).
CREATE OR REPLACE FUNCTION veritable.rate_limit(p_key text, p_max integer, p_window interval)
RETURNS integer LANGUAGE sql AS $$
    INSERT INTO public.rate_limits AS r (key, window_start, hits) VALUES (p_key, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        window_start = CASE WHEN r.window_start + p_window <= now() THEN now() ELSE r.window_start END,
        hits = CASE WHEN r.window_start + p_window <= now() THEN 1 ELSE r.hits + 1 END
    RETURNING CASE WHEN hits > p_max
                   THEN greatest(1, ceil(extract(epoch FROM window_start + p_window - now())))::integer
                   ELSE 0 END;
$$;

-- Old windows, removed by the proxies' housekeeping so the table stays small.
CREATE OR REPLACE FUNCTION veritable.rate_limit_sweep(p_older_than interval) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM public.rate_limits WHERE window_start < now() - p_older_than RETURNING 1)
    SELECT count(*) FROM gone;
$$;
