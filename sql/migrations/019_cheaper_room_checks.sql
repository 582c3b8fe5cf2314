-- The outbox's and presence's format CHECKs, same rules, a fraction of the
-- cost. PostgreSQL's regex engine runs a bounded repetition such as
-- `[A-Za-z0-9_-]{1,200}` as a large automaton: 27 µs per `room` checked
-- (5.36 s for 200,000 rooms, against 0.30 s for the unbounded pattern with a
-- length test), about a tenth of PostgreSQL's CPU per reply once replies are
-- written in batches (BENCHMARKS.md, "The write path"). The pattern admits a
-- single ':', so the part after it is `octet_length(room) - strpos(room, ':')`
-- bytes long (ASCII only).
-- NOT VALID, then VALIDATE: checking existing rows lets writers go on.

SET LOCAL search_path = public;

ALTER TABLE events
    DROP CONSTRAINT events_room_format,
    DROP CONSTRAINT events_kind_format,
    ADD CONSTRAINT events_room_format
        CHECK (room ~ '^(topic|category|wiki|user):[A-Za-z0-9_-]+$' AND octet_length(room) - strpos(room, ':') <= 200) NOT VALID,
    ADD CONSTRAINT events_kind_format CHECK (kind ~ '^[a-z][a-z_.]*$' AND octet_length(kind) <= 64) NOT VALID;
ALTER TABLE events VALIDATE CONSTRAINT events_room_format;
ALTER TABLE events VALIDATE CONSTRAINT events_kind_format;

ALTER TABLE presence
    DROP CONSTRAINT presence_room_format,
    ADD CONSTRAINT presence_room_format
        CHECK (room ~ '^(topic|category|wiki):[A-Za-z0-9_-]+$' AND octet_length(room) - strpos(room, ':') <= 200) NOT VALID;
ALTER TABLE presence VALIDATE CONSTRAINT presence_room_format;
