-- The veritable extension: sanitization, reply trees, topic pages, trigger
-- functions and the outbox helpers live in schema `veritable`.
-- The extension is marked trusted, so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS veritable;
