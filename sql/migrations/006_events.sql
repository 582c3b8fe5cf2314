-- The realtime outbox. Writers insert rows in their own transaction (never
-- pg_notify: see docs/ARCHITECTURE.md); a single sequencer later stamps a gap-free `seq`
-- in commit-safe order, and proxies read `WHERE seq > cursor ORDER BY seq`.

-- Tables live in schema public, the extension's functions in schema veritable;
-- a role named like a schema would otherwise pull new tables into it via "$user".
SET LOCAL search_path = public;

CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction; the sequencer stamps only rows whose xid is below
    -- pg_snapshot_xmin(pg_current_snapshot()), i.e. whose writer has finished.
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq        bigint,
    room       text        NOT NULL
               CONSTRAINT events_room_format CHECK (room ~ '^(topic|category|wiki|user):[A-Za-z0-9_-]{1,200}$'),
    kind       text        NOT NULL CONSTRAINT events_kind_format CHECK (kind ~ '^[a-z][a-z_.]{0,63}$'),
    payload    jsonb       NOT NULL DEFAULT '{}'
               CONSTRAINT events_payload_small CHECK (octet_length(payload::text) <= 4096),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_unstamped_idx ON events (xid, id) WHERE seq IS NULL;
-- Unique once stamped; a partial index, so writers (who insert seq = NULL)
-- pay for one index entry fewer.
CREATE UNIQUE INDEX events_seq_key ON events (seq) WHERE seq IS NOT NULL;
