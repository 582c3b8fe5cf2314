-- Rate limits that every proxy instance shares: fixed windows counted in
-- PostgreSQL, not in one process's memory (two proxies would each allow the
-- limit). Unlogged: a crash may forget the counters, which only resets them.

SET LOCAL search_path = public;

CREATE UNLOGGED TABLE rate_limits (
    key          text        PRIMARY KEY CONSTRAINT rate_limits_key_length CHECK (char_length(key) <= 200),
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL CHECK (hits >= 0)
);

-- Counts one hit of `p_key`; returns 0 when it is within `p_max` hits per
-- `p_window`, else the seconds until the window ends (for Retry-After).
CREATE FUNCTION veritable.rate_limit(p_key text, p_max integer, p_window interval)
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
CREATE FUNCTION veritable.rate_limit_sweep(p_older_than interval) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM public.rate_limits WHERE window_start < now() - p_older_than RETURNING 1)
    SELECT count(*) FROM gone;
$$;
