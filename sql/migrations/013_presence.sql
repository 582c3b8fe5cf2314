-- Presence: who is in a room, across proxies. Each proxy keeps its own rows
-- (`proxy` = its id) and refreshes their expiry every third of the TTL; rows
-- of a proxy that died expire and are swept by the others. Unlogged: a crash
-- forgets presence, which the next refresh rebuilds.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (080_presence).

SET LOCAL search_path = public;

CREATE UNLOGGED TABLE presence (
    room       text        NOT NULL CONSTRAINT presence_room_format CHECK (room ~ '^(topic|category|wiki):[A-Za-z0-9_-]{1,200}$'),
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    proxy      text        NOT NULL CONSTRAINT presence_proxy_length CHECK (char_length(proxy) BETWEEN 1 AND 64),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (room, user_id, proxy)
);
CREATE INDEX presence_expires_at_idx ON presence (expires_at);
