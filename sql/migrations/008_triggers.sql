-- The triggers that keep derived data true in the writer's own transaction:
-- sanitized HTML, reply-tree bookkeeping, per-topic counters and participants,
-- mentions and their notifications, the activity feed, and the events outbox.
--
-- Never pg_notify here: NOTIFY takes a cluster-wide lock through commit and
-- serializes writers (docs/ARCHITECTURE.md). Writers only add `events` rows.
--
-- Lock order of every write, fixed so concurrent writers cannot deadlock on
-- each other: the reply being written, its parent reply, the participant row,
-- the topic row. A move between topics touches the lower topic id first.
-- Topic rows are only ever locked FOR NO KEY UPDATE, which does not conflict
-- with the KEY SHARE locks that foreign-key checks of reply inserts take.
-- No site-wide or per-category row is updated per reply.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (010_render to 090_accounts).

SET LOCAL search_path = public;
