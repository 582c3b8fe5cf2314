-- The veritable extension: sanitization, reply trees, topic pages, trigger
-- functions and the outbox helpers live in schema `veritable`.
-- The extension is marked trusted, so the database owner may create it.

-- Tables live in schema public, the extension's functions in schema veritable;
-- a role named like a schema would otherwise pull new tables into it via "$user".
SET LOCAL search_path = public;
CREATE EXTENSION IF NOT EXISTS veritable;
