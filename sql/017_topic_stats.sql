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

-- +1 / -1 one live reply of p_author in p_topic.
CREATE OR REPLACE FUNCTION veritable.count_reply(p_topic bigint, p_author bigint, p_at timestamptz, p_delta integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    joined integer := 0;   -- change of participant_count
    remaining integer;     -- the author's live replies here, NULL after drift
    last_reply timestamptz;
BEGIN
    IF p_delta > 0 THEN
        -- The topic row before the participant and stats rows (lock order above).
        PERFORM 1 FROM public.forum_topics WHERE id = p_topic FOR KEY SHARE;
        INSERT INTO public.forum_topic_participants AS p (topic_id, user_id, reply_count)
        VALUES (p_topic, p_author, 1)
        ON CONFLICT (topic_id, user_id) DO UPDATE SET reply_count = p.reply_count + 1
        RETURNING (p.reply_count = 1)::integer INTO joined;
        UPDATE public.forum_topic_stats
           SET reply_count = reply_count + 1,
               participant_count = participant_count + joined,
               last_reply_at = greatest(last_reply_at, p_at),
               last_activity_at = greatest(last_activity_at, p_at)
         WHERE topic_id = p_topic;
    ELSE
        -- Lock the participant row first, then decide: a concurrent writer
        -- cannot change the count between the look and the change.
        SELECT p.reply_count INTO remaining FROM public.forum_topic_participants p
         WHERE p.topic_id = p_topic AND p.user_id = p_author FOR UPDATE;
        IF remaining <= 1 THEN
            -- The author's last live reply here: they stop being a participant.
            DELETE FROM public.forum_topic_participants WHERE topic_id = p_topic AND user_id = p_author;
            joined := -1;
        ELSIF remaining > 1 THEN
            UPDATE public.forum_topic_participants SET reply_count = reply_count - 1
             WHERE topic_id = p_topic AND user_id = p_author;
        END IF;
        SELECT s.last_reply_at INTO last_reply FROM public.forum_topic_stats s WHERE s.topic_id = p_topic FOR NO KEY UPDATE;
        IF last_reply IS NOT NULL AND last_reply <= p_at THEN
            -- The newest live reply went: find the one before it (an index probe).
            SELECT max(r.created_at) INTO last_reply
              FROM public.forum_replies r WHERE r.topic_id = p_topic AND NOT r.is_deleted;
        END IF;
        -- Drift (found by reconcile_topic_stats) never makes a counter negative.
        UPDATE public.forum_topic_stats s
           SET reply_count = greatest(s.reply_count - 1, 0),
               participant_count = greatest(s.participant_count + joined, 0),
               last_reply_at = last_reply,
               last_activity_at = greatest(t.created_at, last_reply)
          FROM public.forum_topics t
         WHERE s.topic_id = p_topic AND t.id = p_topic;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION veritable.topic_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.forum_topic_stats (topic_id, category_id, is_pinned, is_deleted, last_activity_at)
    VALUES (NEW.id, NEW.category_id, NEW.is_pinned, NEW.is_deleted, NEW.created_at);
    INSERT INTO public.unified_activity (user_id, kind, topic_id, created_at)
    VALUES (NEW.author_id, 'topic_created', NEW.id, NEW.created_at);
    IF strpos(NEW.body, '@') > 0 THEN
        PERFORM veritable.record_mentions(NEW.body, NEW.author_id, NEW.id, NULL);
    END IF;
    INSERT INTO public.events (room, kind, payload)
    VALUES ('category:' || NEW.category_id, 'topic.created',
            jsonb_build_object('id', NEW.id, 'category_id', NEW.category_id, 'author_id', NEW.author_id, 'title', NEW.title));
    RETURN NULL;
END $$;

-- Only what readers see; the counters live in forum_topic_stats. The page
-- order's copies of category, pin and deletion follow the topic.
CREATE OR REPLACE FUNCTION veritable.topic_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload jsonb := jsonb_build_object('id', NEW.id, 'category_id', NEW.category_id, 'title', NEW.title,
        'is_pinned', NEW.is_pinned, 'is_locked', NEW.is_locked, 'is_deleted', NEW.is_deleted);
BEGIN
    IF (NEW.category_id, NEW.is_pinned, NEW.is_deleted) IS DISTINCT FROM (OLD.category_id, OLD.is_pinned, OLD.is_deleted) THEN
        UPDATE public.forum_topic_stats
           SET category_id = NEW.category_id, is_pinned = NEW.is_pinned, is_deleted = NEW.is_deleted
         WHERE topic_id = NEW.id;
    END IF;
    INSERT INTO public.events (room, kind, payload) VALUES ('topic:' || NEW.id, 'topic.updated', payload);
    INSERT INTO public.events (room, kind, payload) VALUES ('category:' || NEW.category_id, 'topic.updated', payload);
    IF NEW.category_id <> OLD.category_id THEN
        INSERT INTO public.events (room, kind, payload) VALUES ('category:' || OLD.category_id, 'topic.moved', payload);
    END IF;
    RETURN NULL;
END $$;

-- The counters' pass of reconcile_topic_stats() (016 named it
-- reconcile_topic_counters), now against forum_topic_stats: the participants
-- and child-count passes are those of 015, restated because a function is
-- replaced whole.
CREATE OR REPLACE FUNCTION veritable.reconcile_topic_counters() RETURNS bigint LANGUAGE plpgsql
SET work_mem = '64MB'
AS $$
DECLARE
    fixed bigint := 0;
    n bigint;
BEGIN
    -- Writers to replies wait while it runs, so it cannot race them.
    LOCK TABLE public.forum_replies IN SHARE MODE;

    WITH truth AS (
        SELECT topic_id, author_id AS user_id, count(*)::integer AS reply_count
          FROM public.forum_replies WHERE NOT is_deleted GROUP BY topic_id, author_id
    ), differ AS (
        SELECT coalesce(t.topic_id, p.topic_id) AS topic_id, coalesce(t.user_id, p.user_id) AS user_id,
               t.reply_count AS truth, p.reply_count AS kept
          FROM truth t
          FULL JOIN public.forum_topic_participants p ON p.topic_id = t.topic_id AND p.user_id = t.user_id
         WHERE t.reply_count IS DISTINCT FROM p.reply_count
    ), added AS (
        INSERT INTO public.forum_topic_participants (topic_id, user_id, reply_count)
        SELECT topic_id, user_id, truth FROM differ WHERE kept IS NULL
        RETURNING 1
    ), corrected AS (
        UPDATE public.forum_topic_participants p SET reply_count = d.truth
          FROM differ d
         WHERE d.kept IS NOT NULL AND d.truth IS NOT NULL AND p.topic_id = d.topic_id AND p.user_id = d.user_id
        RETURNING 1
    ), removed AS (
        DELETE FROM public.forum_topic_participants p
         USING differ d
         WHERE d.truth IS NULL AND p.topic_id = d.topic_id AND p.user_id = d.user_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM corrected) + (SELECT count(*) FROM removed) INTO n;
    fixed := fixed + n;

    -- Stats rows that differ from the truth, and missing ones (only a write
    -- with triggers disabled can lose one), each counted once.
    WITH live AS (
        SELECT topic_id, count(*)::integer AS replies, count(DISTINCT author_id)::integer AS participants,
               max(created_at) AS last_reply_at
          FROM public.forum_replies WHERE NOT is_deleted GROUP BY topic_id
    ), truth AS (
        SELECT t.id, t.category_id, t.is_pinned, t.is_deleted,
               coalesce(l.replies, 0) AS replies, coalesce(l.participants, 0) AS participants,
               l.last_reply_at, greatest(t.created_at, l.last_reply_at) AS last_activity_at
          FROM public.forum_topics t LEFT JOIN live l ON l.topic_id = t.id
    ), corrected AS (
        UPDATE public.forum_topic_stats s
           SET category_id = truth.category_id, is_pinned = truth.is_pinned, is_deleted = truth.is_deleted,
               reply_count = truth.replies, participant_count = truth.participants,
               last_reply_at = truth.last_reply_at, last_activity_at = truth.last_activity_at
          FROM truth
         WHERE truth.id = s.topic_id
           AND (s.category_id, s.is_pinned, s.is_deleted, s.reply_count, s.participant_count, s.last_reply_at,
                s.last_activity_at)
               IS DISTINCT FROM (truth.category_id, truth.is_pinned, truth.is_deleted, truth.replies,
                                 truth.participants, truth.last_reply_at, truth.last_activity_at)
        RETURNING 1
    ), added AS (
        INSERT INTO public.forum_topic_stats (topic_id, category_id, is_pinned, is_deleted, reply_count,
                                              participant_count, last_reply_at, last_activity_at)
        SELECT id, category_id, is_pinned, is_deleted, replies, participants, last_reply_at, last_activity_at
          FROM truth
         WHERE NOT EXISTS (SELECT 1 FROM public.forum_topic_stats s WHERE s.topic_id = truth.id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM corrected) + (SELECT count(*) FROM added) INTO n;
    fixed := fixed + n;

    WITH truth AS (
        SELECT r.id, coalesce(c.n, 0)::integer AS n
          FROM public.forum_replies r
          LEFT JOIN (SELECT parent_id, count(*) AS n FROM public.forum_replies
                      WHERE parent_id IS NOT NULL GROUP BY parent_id) c ON c.parent_id = r.id
    )
    UPDATE public.forum_replies r SET child_count = truth.n
      FROM truth WHERE truth.id = r.id AND r.child_count <> truth.n;
    GET DIAGNOSTICS n = ROW_COUNT;
    fixed := fixed + n;

    RETURN fixed;
END $$;
