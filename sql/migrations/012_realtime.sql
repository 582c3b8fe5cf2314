-- The realtime sequencer: stamps a gap-free `seq` on the outbox rows whose
-- writers have finished, in (xid, id) order, and wakes the proxies with one
-- NOTIFY per batch (never from the writers' own transactions: docs/ARCHITECTURE.md).
--
-- Commit-safe: a row is stamped only when its xid is below the xmin of a
-- snapshot taken first, so every transaction that could still add a row with
-- a lower xid has ended; a writer that commits late is stamped late, never
-- skipped. One sequencer at a time (a transaction-level advisory lock; a
-- second caller returns NULL at once), so stamps of one call all follow the
-- previous call's, and readers of `seq > cursor` never see a hole.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (070_events).

SET LOCAL search_path = public;
