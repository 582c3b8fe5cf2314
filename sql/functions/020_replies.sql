-- Replies: placement in the tree, counters, mentions. These triggers keep
-- derived data true in the writer's own transaction: reply-tree bookkeeping,
-- per-topic counters and participants, mentions and their notifications, the
-- activity feed, and the events outbox.
--
-- Never pg_notify here: NOTIFY takes a cluster-wide lock through commit and
-- serializes writers (docs/ARCHITECTURE.md). Writers only add `events` rows.
--
-- Lock order of every reply write, fixed so concurrent writers cannot
-- deadlock on each other: the replies being written, then (their foreign-key
-- checks) the topic row and the parent reply KEY SHARE, then the parent
-- replies, the participant rows and the stats rows, each set in key order. A
-- statement inserting many replies sorts its rows by topic. A move between
-- topics touches the lower topic id first. No site-wide or per-category row
-- is updated per reply.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Replaced by forum_replies_inserted (one call per statement instead of per
-- row). Dropped here, in the transaction that creates the replacement, so no
-- reply is written between the two with neither.
DROP TRIGGER IF EXISTS forum_replies_write ON forum_replies;
DROP TRIGGER IF EXISTS forum_replies_mentions ON forum_replies;
DROP FUNCTION IF EXISTS veritable.reply_write();
DROP FUNCTION IF EXISTS veritable.reply_mentions();

-- +1 / -1 one live reply of p_author in p_topic. `p_topic_held`: the caller
-- holds the topic KEY SHARE already (an insert's foreign-key check took it).
DROP FUNCTION IF EXISTS veritable.count_reply(bigint, bigint, timestamptz, integer);
CREATE OR REPLACE FUNCTION veritable.count_reply(p_topic bigint, p_author bigint, p_at timestamptz, p_delta integer,
    p_topic_held boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    joined integer := 0;   -- change of participant_count
    remaining integer;     -- the author's live replies here, NULL after drift
    last_reply timestamptz;
BEGIN
    IF p_delta > 0 THEN
        -- The topic row before the participant and stats rows (lock order above).
        IF NOT p_topic_held THEN
            PERFORM 1 FROM public.forum_topics WHERE id = p_topic FOR KEY SHARE;
        END IF;
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

-- Mentions in a new topic or reply: mentions rows and their notifications.
CREATE OR REPLACE FUNCTION veritable.record_mentions(p_body text, p_author bigint, p_topic bigint, p_reply bigint)
RETURNS void LANGUAGE sql AS $$
    WITH named AS (
        SELECT u.id FROM public.users u
         WHERE lower(u.username) = ANY (veritable.mentions(p_body))
           AND u.id <> p_author AND NOT u.is_deleted
    ), recorded AS (
        INSERT INTO public.mentions (mentioned_user_id, author_id, topic_id, reply_id)
        SELECT id, p_author, p_topic, p_reply FROM named
        ON CONFLICT DO NOTHING
        RETURNING mentioned_user_id
    )
    INSERT INTO public.notifications (user_id, kind, actor_id, topic_id, reply_id)
    SELECT mentioned_user_id, 'mention', p_author, p_topic, p_reply FROM recorded;
$$;

-- Placement: a reply's depth is its parent's plus one, kept when it is
-- reparented; a new reply starts with no children (they are counted as they
-- come). The WHEN clause spares a new root reply with the defaults the call.
CREATE OR REPLACE FUNCTION veritable.reply_placement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.child_count := 0;
    END IF;
    IF NEW.parent_id IS NULL THEN
        NEW.depth := 0;
    ELSE
        SELECT p.depth + 1 INTO NEW.depth FROM public.forum_replies p WHERE p.id = NEW.parent_id;
        -- A missing parent is refused by the foreign key right after.
        NEW.depth := coalesce(NEW.depth, 0);
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER forum_replies_placement BEFORE INSERT OR UPDATE OF parent_id ON forum_replies
    FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL OR NEW.depth <> 0 OR NEW.child_count <> 0)
    EXECUTE FUNCTION veritable.reply_placement();

-- Everything new replies imply, once per statement over all its rows (the
-- transition table `new_replies`): one child-count update per parent, one
-- participant upsert per topic and author, one stats update per topic, and
-- one insert each of activity rows, outbox rows and mentions. A proxy's
-- batch of 60 replies and a DBA's single-row INSERT take the same path.
-- Measured against the former BEFORE ROW trigger that did this per row with
-- one statement each (BENCHMARKS.md, "The write path").
--
-- Runs after the rows' own checks (the foreign keys' AFTER ROW triggers fire
-- first), so the topics are already held KEY SHARE; then the parents, the
-- participants and the stats rows, each in key order (the lock order above).
CREATE OR REPLACE FUNCTION veritable.replies_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total integer;      -- new replies
    children integer;   -- new replies with a parent
    mentioning integer; -- new replies that may mention someone
    -- The reply, when there is one:
    one_id bigint; one_topic bigint; one_parent bigint; one_author bigint;
    one_depth integer; one_at timestamptz; one_deleted boolean;
BEGIN
    -- One look decides which of the optional statements run (most posts
    -- have neither a parent nor an '@': each statement skipped is one
    -- executor start and end less on a one-row insert), and holds the
    -- reply itself when the statement wrote one.
    SELECT count(*), count(*) FILTER (WHERE parent_id IS NOT NULL), count(*) FILTER (WHERE strpos(body, '@') > 0),
           min(id), min(topic_id), min(parent_id), min(author_id), min(depth), max(created_at), bool_or(is_deleted)
      INTO total, children, mentioning, one_id, one_topic, one_parent, one_author, one_depth, one_at, one_deleted
      FROM new_replies;

    IF total = 1 THEN
        -- The same changes for one row, as statements on that row's keys:
        -- no aggregate, join or sort over the transition table. A lone post
        -- (the proxy's, or a DBA's INSERT) is most of a quiet site's writes.
        -- The lock order is the same: parent, participant, stats.
        IF one_parent IS NOT NULL THEN
            UPDATE public.forum_replies SET child_count = child_count + 1 WHERE id = one_parent;
        END IF;
        IF NOT one_deleted THEN
            PERFORM veritable.count_reply(one_topic, one_author, one_at, 1, true);
        END IF;
        INSERT INTO public.unified_activity (user_id, kind, topic_id, reply_id, created_at)
        VALUES (one_author, 'reply_created', one_topic, one_id, one_at);
        INSERT INTO public.events (room, kind, payload)
        VALUES ('topic:' || one_topic, 'reply.created',
                jsonb_build_object('id', one_id, 'topic_id', one_topic, 'parent_id', one_parent,
                                   'author_id', one_author, 'depth', one_depth));
        IF mentioning > 0 THEN
            PERFORM veritable.record_mentions(body, author_id, topic_id, id) FROM new_replies;
        END IF;
        RETURN NULL;
    END IF;

    IF children > 0 THEN
        WITH born AS (
            SELECT parent_id AS id, count(*)::integer AS n FROM new_replies WHERE parent_id IS NOT NULL GROUP BY parent_id
        ), locked AS (
            SELECT r.id FROM public.forum_replies r JOIN born USING (id) ORDER BY r.id FOR NO KEY UPDATE OF r
        )
        UPDATE public.forum_replies r SET child_count = r.child_count + born.n
          FROM born JOIN locked USING (id)
         WHERE r.id = born.id;
    END IF;

    INSERT INTO public.forum_topic_participants AS p (topic_id, user_id, reply_count)
    SELECT topic_id, author_id, count(*)::integer FROM new_replies WHERE NOT is_deleted
     GROUP BY topic_id, author_id ORDER BY topic_id, author_id
    ON CONFLICT (topic_id, user_id) DO UPDATE SET reply_count = p.reply_count + EXCLUDED.reply_count;

    -- An author joined the topic when their participant row holds exactly
    -- this statement's replies: the row was just created, and it stays ours
    -- (locked) until commit, so nobody else can have added to it since.
    WITH per_author AS (
        SELECT topic_id, author_id, count(*)::integer AS n, max(created_at) AS last
          FROM new_replies WHERE NOT is_deleted GROUP BY topic_id, author_id
    ), per_topic AS (
        SELECT a.topic_id, sum(a.n)::integer AS n, count(*) FILTER (WHERE p.reply_count = a.n)::integer AS joined,
               max(a.last) AS last
          FROM per_author a
          JOIN public.forum_topic_participants p ON p.topic_id = a.topic_id AND p.user_id = a.author_id
         GROUP BY a.topic_id
    ), locked AS (
        SELECT s.topic_id FROM public.forum_topic_stats s JOIN per_topic USING (topic_id)
         ORDER BY s.topic_id FOR NO KEY UPDATE OF s
    )
    UPDATE public.forum_topic_stats s
       SET reply_count = s.reply_count + t.n,
           participant_count = s.participant_count + t.joined,
           last_reply_at = greatest(s.last_reply_at, t.last),
           last_activity_at = greatest(s.last_activity_at, t.last)
      FROM per_topic t JOIN locked USING (topic_id)
     WHERE s.topic_id = t.topic_id;

    INSERT INTO public.unified_activity (user_id, kind, topic_id, reply_id, created_at)
    SELECT author_id, 'reply_created', topic_id, id, created_at FROM new_replies ORDER BY id;

    -- The replies' events before their mentions' notifications (the order a
    -- reader of the outbox sees them in).
    INSERT INTO public.events (room, kind, payload)
    SELECT 'topic:' || topic_id, 'reply.created',
           jsonb_build_object('id', id, 'topic_id', topic_id, 'parent_id', parent_id, 'author_id', author_id, 'depth', depth)
      FROM new_replies ORDER BY id;

    IF mentioning > 0 THEN
        PERFORM veritable.record_mentions(body, author_id, topic_id, id)
           FROM new_replies WHERE strpos(body, '@') > 0 ORDER BY id;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER forum_replies_inserted AFTER INSERT ON forum_replies
    REFERENCING NEW TABLE AS new_replies
    FOR EACH STATEMENT EXECUTE FUNCTION veritable.replies_inserted();

-- A reply as the API returns it: one definition for every statement that
-- answers with a reply (post_replies here, the proxy's edit statement). A
-- single-expression SQL function, so PostgreSQL inlines it into the query.
CREATE OR REPLACE FUNCTION veritable.reply_json(r public.forum_replies) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', r.id, 'topic_id', r.topic_id, 'parent_id', r.parent_id, 'depth', r.depth,
        'author_id', r.author_id, 'body', r.body, 'body_html', r.body_html, 'is_deleted', r.is_deleted,
        'created_at', r.created_at, 'edited_at', r.edited_at)::text
$$;

-- Posts replies: element i of every array is reply i. Each is counted
-- against its author's posting limit (`p_per_minute`), then inserted if
-- allowed, its topic live and open and its parent (if any) a reply of the
-- same topic, all in one statement: the proxy sends every batch of posts
-- (sql/functions/README.md; proxy/src/posting.rs) through here, so a batch is
-- one transaction and one commit. One row per input reply, in input order:
-- the seconds to wait (0 when allowed), whether the topic is locked (NULL: no
-- such live topic), whether the parent fits, the stored reply as JSON (NULL
-- when it was not written), the topic's category, and whether it was held
-- back (below). The insert is sorted by topic (the lock order above); ids are
-- drawn first so that each stored reply finds its input row.
--
-- A batch (`p_batch`) waits for no row another transaction holds: a reply
-- whose topic or parent is locked against it (a `SELECT ... FOR UPDATE`, a
-- delete in an open transaction) is `held`: neither written nor counted
-- against the limit, for the proxy to post alone, where it may wait up to the
-- role's lock_timeout and fail by itself; the batch goes on without it. Rows
-- the probe cannot see (a stats row held by a DBA, a table lock) stop the
-- batch at a lock_timeout of 2 s instead of the role's 5 (then the proxy
-- posts its replies alone): other batches' locks last one statement, tens of
-- milliseconds. Alone (`NOT p_batch`) a reply waits like any statement.
--
-- A function with a generic plan, not a statement the proxy prepares: with
-- arrays for parameters the planner prices a generic plan (ten rows per
-- unnest) above the custom ones and so planned the statement again at every
-- call, 0.26 ms of a one-row post's 0.8.
DROP FUNCTION IF EXISTS veritable.post_replies(bigint[], bigint[], bigint[], text[], text[], integer);
CREATE OR REPLACE FUNCTION veritable.post_replies(
    p_topics bigint[], p_parents bigint[], p_authors bigint[], p_bodies text[], p_keys text[], p_per_minute integer,
    p_batch boolean DEFAULT false)
RETURNS TABLE (wait integer, is_locked boolean, parent_ok boolean, reply text, category_id bigint, held boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    free_topics bigint[];   -- topics and parents this transaction could lock
    free_parents bigint[];
    live boolean;           -- one reply's topic exists and is not deleted
BEGIN
    IF cardinality(p_topics) = 1 THEN
        -- One reply (a post that found nothing in flight: most posts on a
        -- quiet site): the same locks, checks and outcome as the statement
        -- below, as statements on its own keys. The statement's joins,
        -- sorts and aggregates cost one reply more than its insert does
        -- (BENCHMARKS.md, "One request at a time").
        held := false;
        IF p_batch THEN
            PERFORM set_config('lock_timeout', '2s', true);
            SELECT NOT t.is_deleted, t.is_locked, t.category_id INTO live, is_locked, category_id
              FROM public.forum_topics t WHERE t.id = p_topics[1] FOR KEY SHARE SKIP LOCKED;
            IF NOT FOUND THEN
                -- No such topic, or one held against us.
                SELECT NOT t.is_deleted, t.is_locked, t.category_id INTO live, is_locked, category_id
                  FROM public.forum_topics t WHERE t.id = p_topics[1];
                held := coalesce(live, false);
            END IF;
        ELSE
            SELECT NOT t.is_deleted, t.is_locked, t.category_id INTO live, is_locked, category_id
              FROM public.forum_topics t WHERE t.id = p_topics[1] FOR KEY SHARE;
        END IF;
        IF NOT coalesce(live, false) THEN
            is_locked := NULL;
            category_id := NULL;
        END IF;
        IF p_parents[1] IS NULL THEN
            parent_ok := true;
        ELSIF p_batch THEN
            SELECT p.topic_id = p_topics[1] INTO parent_ok
              FROM public.forum_replies p WHERE p.id = p_parents[1] FOR KEY SHARE SKIP LOCKED;
            IF NOT FOUND THEN
                SELECT p.topic_id = p_topics[1] INTO parent_ok FROM public.forum_replies p WHERE p.id = p_parents[1];
                held := held OR coalesce(parent_ok, false);
            END IF;
        ELSE
            SELECT p.topic_id = p_topics[1] INTO parent_ok
              FROM public.forum_replies p WHERE p.id = p_parents[1] FOR KEY SHARE;
        END IF;
        parent_ok := coalesce(parent_ok, false);
        -- A held reply is not counted: it is posted again.
        wait := CASE WHEN held THEN 0
                     ELSE coalesce(veritable.rate_limit(p_keys[1], p_per_minute, interval '1 minute'), 0) END;
        IF wait = 0 AND NOT is_locked AND parent_ok AND NOT held THEN
            INSERT INTO public.forum_replies AS r (topic_id, parent_id, author_id, body)
            VALUES (p_topics[1], p_parents[1], p_authors[1], p_bodies[1])
            RETURNING veritable.reply_json(r) INTO reply;
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_batch THEN
        PERFORM set_config('lock_timeout', '2s', true);
        -- Taken here in key order, as the inserts' foreign-key checks would
        -- take them; SKIP LOCKED leaves out the rows held against us.
        SELECT coalesce(array_agg(t.id), '{}') INTO free_topics FROM (
            SELECT t.id FROM public.forum_topics t WHERE t.id = ANY (p_topics)
             ORDER BY t.id FOR KEY SHARE SKIP LOCKED) t;
        SELECT coalesce(array_agg(p.id), '{}') INTO free_parents FROM (
            SELECT p.id FROM public.forum_replies p WHERE p.id = ANY (p_parents)
             ORDER BY p.id FOR KEY SHARE SKIP LOCKED) p;
    ELSE
        -- Alone, the reply waits for its topic and parent first, holding
        -- nothing: waiting with its author's rate-limit row taken would
        -- hold that author's posts in every batch behind this lock.
        PERFORM 1 FROM public.forum_topics t WHERE t.id = ANY (p_topics) ORDER BY t.id FOR KEY SHARE;
        PERFORM 1 FROM public.forum_replies p WHERE p.id = ANY (p_parents) ORDER BY p.id FOR KEY SHARE;
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_topics, p_parents, p_authors, p_bodies, p_keys)
               WITH ORDINALITY AS i(topic_id, parent_id, author_id, body, key, pos)
    ), found AS (
        SELECT i.pos, t.id IS NOT NULL AS topic_found, t.is_locked, t.category_id,
               i.parent_id IS NULL OR EXISTS (
                   SELECT 1 FROM public.forum_replies p WHERE p.id = i.parent_id AND p.topic_id = i.topic_id) AS parent_ok
          FROM input i LEFT JOIN public.forum_topics t ON t.id = i.topic_id AND NOT t.is_deleted
    ), probed AS (
        SELECT f.*, p_batch AND (
                   (f.topic_found AND i.topic_id <> ALL (free_topics))
                   OR (i.parent_id IS NOT NULL AND f.parent_ok AND i.parent_id <> ALL (free_parents))) AS held
          FROM found f JOIN input i ON i.pos = f.pos
    ), limited AS (
        -- Held replies are not counted: they are posted again.
        SELECT l.pos, l.wait FROM veritable.rate_limit_many(
            (SELECT array_agg(CASE WHEN p.held THEN NULL ELSE i.key END ORDER BY i.pos)
               FROM input i JOIN probed p ON p.pos = i.pos),
            p_per_minute, interval '1 minute') AS l
    ), checked AS (
        SELECT p.pos, coalesce(l.wait, 0) AS wait, p.is_locked, p.category_id, p.parent_ok, p.held
          FROM probed p LEFT JOIN limited l ON l.pos = p.pos
    ), admitted AS (
        SELECT i.pos, nextval('public.forum_replies_id_seq'::regclass) AS id,
               i.topic_id, i.parent_id, i.author_id, i.body
          FROM input i JOIN checked c ON c.pos = i.pos
         WHERE c.wait = 0 AND NOT c.is_locked AND c.parent_ok AND NOT c.held
    ), inserted AS (
        INSERT INTO public.forum_replies AS r (id, topic_id, parent_id, author_id, body)
        SELECT a.id, a.topic_id, a.parent_id, a.author_id, a.body FROM admitted a ORDER BY a.topic_id, a.pos
        RETURNING r.id, veritable.reply_json(r) AS reply
    )
    SELECT c.wait, c.is_locked, c.parent_ok, inserted.reply, c.category_id, c.held
      FROM checked c LEFT JOIN admitted a ON a.pos = c.pos LEFT JOIN inserted ON inserted.id = a.id
     ORDER BY c.pos;
END $$;

-- Soft delete, restore, move between topics, reparenting, author change, edit.
CREATE OR REPLACE FUNCTION veritable.reply_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
        IF OLD.parent_id IS NOT NULL THEN
            UPDATE public.forum_replies SET child_count = greatest(child_count - 1, 0) WHERE id = OLD.parent_id;
        END IF;
        IF NEW.parent_id IS NOT NULL THEN
            UPDATE public.forum_replies SET child_count = child_count + 1 WHERE id = NEW.parent_id;
        END IF;
    END IF;
    IF (NEW.topic_id, NEW.author_id, NEW.is_deleted) IS DISTINCT FROM (OLD.topic_id, OLD.author_id, OLD.is_deleted) THEN
        IF OLD.topic_id <= NEW.topic_id THEN
            IF NOT OLD.is_deleted THEN PERFORM veritable.count_reply(OLD.topic_id, OLD.author_id, OLD.created_at, -1); END IF;
            IF NOT NEW.is_deleted THEN PERFORM veritable.count_reply(NEW.topic_id, NEW.author_id, NEW.created_at, 1); END IF;
        ELSE
            IF NOT NEW.is_deleted THEN PERFORM veritable.count_reply(NEW.topic_id, NEW.author_id, NEW.created_at, 1); END IF;
            IF NOT OLD.is_deleted THEN PERFORM veritable.count_reply(OLD.topic_id, OLD.author_id, OLD.created_at, -1); END IF;
        END IF;
    END IF;
    kind := CASE
        WHEN NEW.topic_id <> OLD.topic_id THEN 'reply.moved'
        WHEN NEW.is_deleted AND NOT OLD.is_deleted THEN 'reply.deleted'
        WHEN OLD.is_deleted AND NOT NEW.is_deleted THEN 'reply.restored'
        ELSE 'reply.updated'
    END;
    INSERT INTO public.events (room, kind, payload)
    VALUES ('topic:' || NEW.topic_id, kind,
            jsonb_build_object('id', NEW.id, 'topic_id', NEW.topic_id, 'parent_id', NEW.parent_id));
    IF NEW.topic_id <> OLD.topic_id THEN
        INSERT INTO public.events (room, kind, payload)
        VALUES ('topic:' || OLD.topic_id, kind, jsonb_build_object('id', NEW.id, 'topic_id', NEW.topic_id, 'from_topic_id', OLD.topic_id));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER forum_replies_updated AFTER UPDATE OF topic_id, parent_id, author_id, is_deleted, body ON forum_replies
    FOR EACH ROW EXECUTE FUNCTION veritable.reply_updated();

-- Hard delete (moderation, or the cascade of a deleted topic). Rare: the
-- activity rows of the reply are found without an index (a scan of
-- unified_activity), which keeps every reply insert one index entry cheaper.
CREATE OR REPLACE FUNCTION veritable.reply_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.parent_id IS NOT NULL THEN
        UPDATE public.forum_replies SET child_count = greatest(child_count - 1, 0) WHERE id = OLD.parent_id;
    END IF;
    -- When the whole topic is being deleted there is nothing left to count or
    -- tell, and its activity rows go with it (foreign key on topic_id).
    IF EXISTS (SELECT 1 FROM public.forum_topics WHERE id = OLD.topic_id) THEN
        DELETE FROM public.unified_activity WHERE reply_id = OLD.id;
        IF NOT OLD.is_deleted THEN
            PERFORM veritable.count_reply(OLD.topic_id, OLD.author_id, OLD.created_at, -1);
        END IF;
        INSERT INTO public.events (room, kind, payload)
        VALUES ('topic:' || OLD.topic_id, 'reply.removed', jsonb_build_object('id', OLD.id, 'topic_id', OLD.topic_id));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER forum_replies_deleted AFTER DELETE ON forum_replies
    FOR EACH ROW EXECUTE FUNCTION veritable.reply_deleted();
