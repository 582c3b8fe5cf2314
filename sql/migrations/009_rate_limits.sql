-- Rate limits that every proxy instance shares: fixed windows counted in
-- PostgreSQL, not in one process's memory (two proxies would each allow the
-- limit). Unlogged: a crash may forget the counters, which only resets them.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (060_rate_limits).

SET LOCAL search_path = public;

CREATE UNLOGGED TABLE rate_limits (
    key          text        PRIMARY KEY CONSTRAINT rate_limits_key_length CHECK (char_length(key) <= 200),
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL CHECK (hits >= 0)
);
