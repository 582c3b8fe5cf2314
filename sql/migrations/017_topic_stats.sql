-- A topic's counters and its place in the page order move out of the topic
-- row into a narrow row of their own, `forum_topic_stats` (one per topic, the
-- shape of Lemmy's post_aggregates). Every reply updated its topic's row, and
-- that update could not be HOT (last_activity_at is in the page indexes), so
-- each reply wrote a whole new version of the topic, title, body and HTML
-- included, with new entries in all five of its indexes, re-tokenizing the
-- title and body for the full-text index. Measured on a copy of `medium`,
-- 32 clients, three alternating rounds (BENCHMARKS.md): reply inserts
-- 1,571-1,812 -> 1,916-2,102 per second, WAL per reply 3.7-4.0 -> 2.9 KB.
--
-- The stats row mirrors the three topic columns the page order needs
-- (category_id, is_pinned, is_deleted); veritable.topic_updated keeps them
-- in step. Lock order of a reply write becomes: the reply, its parent reply,
-- the topic row (KEY SHARE, the lock its foreign-key check takes anyway,
-- taken first), the participant row, the stats row. Taking the topic row
-- first keeps a reply and a hard delete of its topic (which locks the topic,
-- then cascades to the stats row) from waiting on each other in a circle.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (020_replies, 030_topics and 110_reconcile).

SET LOCAL search_path = public;

CREATE TABLE forum_topic_stats (
    topic_id          bigint      PRIMARY KEY REFERENCES forum_topics (id) ON DELETE CASCADE,
    category_id       bigint      NOT NULL,
    is_pinned         boolean     NOT NULL,
    is_deleted        boolean     NOT NULL,
    -- Kept by triggers (±1 per change), never aggregated at read time;
    -- veritable.reconcile_topic_stats() recomputes them to detect drift.
    reply_count       integer     NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    participant_count integer     NOT NULL DEFAULT 0 CHECK (participant_count >= 0),
    last_reply_at     timestamptz,
    last_activity_at  timestamptz NOT NULL
);

INSERT INTO forum_topic_stats (topic_id, category_id, is_pinned, is_deleted, reply_count, participant_count,
                               last_reply_at, last_activity_at)
SELECT id, category_id, is_pinned, is_deleted, reply_count, participant_count, last_reply_at, last_activity_at
  FROM forum_topics;

-- Topic pages: pinned first, then last activity, newest first; keyset by id.
CREATE INDEX forum_topic_stats_page_idx ON forum_topic_stats (category_id, is_pinned, last_activity_at, topic_id);
CREATE INDEX forum_topic_stats_page_all_idx ON forum_topic_stats (is_pinned, last_activity_at, topic_id) WHERE NOT is_deleted;
DROP INDEX forum_topics_page_idx;
DROP INDEX forum_topics_page_all_idx;
-- The page index served the category foreign key; replies no longer touch
-- topic rows, so a plain index costs them nothing.
CREATE INDEX forum_topics_category_id_idx ON forum_topics (category_id);

ALTER TABLE forum_topics
    DROP COLUMN reply_count,
    DROP COLUMN participant_count,
    DROP COLUMN last_reply_at,
    DROP COLUMN last_activity_at;
