-- Where each proxy's realtime listener has read the events outbox up to, so
-- that pruning never removes an event a live listener has not read
-- (veritable.prune_events). One row per running proxy, written by its
-- listener about once a second while connected and deleted at a clean
-- shutdown; a row not refreshed for an hour is a proxy that died, and
-- pruning removes it (and stops waiting for it).

SET LOCAL search_path = public;

CREATE TABLE listener_cursors (
    listener text PRIMARY KEY,
    seq      bigint NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT listener_cursors_name_size CHECK (octet_length(listener) BETWEEN 1 AND 64)
);
