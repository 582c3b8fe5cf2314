-- Reply-tree bookkeeping and the indexes of the hot queries.
--
-- Every hot query has an index that serves it in order, so a page or a walk
-- reads only the rows it returns:
--   topic pages (veritable.topic_page)  forum_topics_page_idx / forum_topics_page_all_idx
--   reply walks (veritable.reply_tree)  forum_replies_tree_idx
--   last live reply of a topic          forum_replies_topic_recent_idx
--   unread notifications of a user      notifications_unread_idx
--   activity of a user                  unified_activity_user_id_idx (005)
--   wiki page by slug                   wiki_pages_slug_key (004)
--   session by token hash               sessions_token_hash_key (covering)

SET LOCAL search_path = public;

-- depth: 0 for a top-level reply, parent's + 1 otherwise.
-- child_count: direct children in any state (a walk asks for children only when > 0).
-- Both are kept by the triggers of 008; existing rows are filled here.
ALTER TABLE forum_replies
    ADD COLUMN depth       integer NOT NULL DEFAULT 0 CONSTRAINT forum_replies_depth_nonnegative CHECK (depth >= 0),
    ADD COLUMN child_count integer NOT NULL DEFAULT 0 CONSTRAINT forum_replies_child_count_nonnegative CHECK (child_count >= 0);

UPDATE forum_replies r SET child_count = c.n
  FROM (SELECT parent_id, count(*) AS n FROM forum_replies WHERE parent_id IS NOT NULL GROUP BY parent_id) c
 WHERE c.parent_id = r.id;

-- Bounded: corrupt cyclic data cannot make this loop forever.
WITH RECURSIVE walk (id, depth) AS (
    SELECT id, 0 FROM forum_replies WHERE parent_id IS NULL
    UNION ALL
    SELECT r.id, w.depth + 1 FROM forum_replies r JOIN walk w ON r.parent_id = w.id WHERE w.depth < 100000
)
UPDATE forum_replies r SET depth = w.depth FROM walk w WHERE w.id = r.id AND w.depth > 0;

-- Children of a reply (or the top level, parent_id IS NULL) in id order; also
-- serves the same-topic parent foreign key, so the plain parent index goes.
CREATE INDEX forum_replies_tree_idx ON forum_replies (topic_id, parent_id, id);
DROP INDEX forum_replies_parent_id_idx;
-- The newest live reply of a topic, when the newest one is deleted.
CREATE INDEX forum_replies_topic_recent_idx ON forum_replies (topic_id, created_at) WHERE NOT is_deleted;

-- Topic pages: pinned first, then last activity, newest first; keyset by id.
-- The category index is not partial, so it also serves the category foreign
-- key and replaces the plain category index: every reply updates its topic's
-- last_activity_at, and each index on forum_topics costs that update an entry.
CREATE INDEX forum_topics_page_idx ON forum_topics (category_id, is_pinned, last_activity_at, id);
DROP INDEX forum_topics_category_id_idx;
CREATE INDEX forum_topics_page_all_idx ON forum_topics (is_pinned, last_activity_at, id) WHERE NOT is_deleted;

CREATE INDEX notifications_unread_idx ON notifications (user_id, id DESC) WHERE read_at IS NULL;

-- The per-request session check reads only the index.
DROP INDEX sessions_token_hash_key;
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash) INCLUDE (user_id, expires_at, revoked_at);

-- Outbox readers and the sequencer.
CREATE INDEX events_room_seq_idx ON events (room, seq) WHERE seq IS NOT NULL;
