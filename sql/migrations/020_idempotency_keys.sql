-- Idempotency keys (Stripe's semantics): the answer to a write made with an
-- `Idempotency-Key` header, stored in the write's own transaction and kept
-- 24 hours, so a client that did not hear the answer (a dropped connection,
-- a proxy or database restart) can send the same request again and get the
-- same answer without writing twice. Keys are per user: one user's key
-- never answers another's request.

SET LOCAL search_path = public;

CREATE TABLE idempotency_keys (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL,
    -- SHA-256 of the method, the path and the body: the same key with
    -- another request is refused (422), never answered with this one.
    request_hash bytea NOT NULL,
    -- The answer (NULL only inside the transaction that is writing it).
    status       smallint,
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_key_format CHECK (octet_length(key) BETWEEN 1 AND 255 AND key ~ '^[!-~]+$'),
    CONSTRAINT idempotency_request_hash_size CHECK (octet_length(request_hash) = 32),
    CONSTRAINT idempotency_status_range CHECK (status BETWEEN 200 AND 299)
);

-- The sweep of keys past their 24 hours.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
