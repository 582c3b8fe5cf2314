-- Account changes in the outbox, so every proxy drops what it cached about
-- them as soon as the event arrives (instead of after the cache's TTL): a
-- revoked session (logout) and a user's role or account state.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (090_accounts).

SET LOCAL search_path = public;
