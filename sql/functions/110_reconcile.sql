-- Reconciliation: recompute what the triggers keep and repair drift.
--
-- Two ways to run it:
-- - `reconcile_topic_stats()`: every topic in one statement per table, with
--   writers to replies waiting throughout (a maintenance window: 6 minutes on
--   26M replies).
-- - `CALL reconcile_topic_stats_online()`: topic by topic while the site
--   runs. Each step reads a few hundred topics without a lock
--   (`drifted_topics`) and fixes only those that differ (`reconcile_topics`),
--   holding their rows for milliseconds; a consistent topic is never locked.
--
-- Both compare the tables against one definition of the truth (the
-- `*_truth` functions below), for a set of topics or, given NULL, for all.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

DROP FUNCTION IF EXISTS veritable.reconcile_topic_counters();
DROP PROCEDURE IF EXISTS veritable.reconcile_topic_stats_online(integer, bigint, bigint[]);

-- The truth, for the topics `p_topics` (NULL: every topic). Set-returning SQL
-- functions, which PostgreSQL inlines into the statements that use them; the
-- callers plan with the argument's value (`force_custom_plan`), so the NULL
-- test folds away: a whole-table pass scans, a pass over a few topics walks
-- their index entries.

-- Each author's live replies in a topic, and the newest one's time.
CREATE OR REPLACE FUNCTION veritable.participants_truth(p_topics bigint[])
RETURNS TABLE (topic_id bigint, user_id bigint, reply_count integer, last_reply_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT r.topic_id, r.author_id, count(*)::integer, max(r.created_at)
      FROM public.forum_replies r
     WHERE NOT r.is_deleted AND (p_topics IS NULL OR r.topic_id = ANY (p_topics))
     GROUP BY r.topic_id, r.author_id
$$;

-- The participant rows that differ from the truth: missing (`kept` NULL),
-- miscounted, or invented (`truth` NULL).
CREATE OR REPLACE FUNCTION veritable.participants_drift(p_topics bigint[])
RETURNS TABLE (topic_id bigint, user_id bigint, truth integer, kept integer)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(t.topic_id, k.topic_id), coalesce(t.user_id, k.user_id), t.reply_count, k.reply_count
      FROM veritable.participants_truth(p_topics) t
      FULL JOIN (SELECT p.topic_id, p.user_id, p.reply_count FROM public.forum_topic_participants p
                  WHERE p_topics IS NULL OR p.topic_id = ANY (p_topics)) k
        ON k.topic_id = t.topic_id AND k.user_id = t.user_id
     WHERE t.reply_count IS DISTINCT FROM k.reply_count
$$;

-- A topic's stats row as it should be.
CREATE OR REPLACE FUNCTION veritable.topic_stats_truth(p_topics bigint[])
RETURNS TABLE (topic_id bigint, category_id bigint, is_pinned boolean, is_deleted boolean, reply_count integer,
               participant_count integer, last_reply_at timestamptz, last_activity_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.category_id, t.is_pinned, t.is_deleted, coalesce(l.replies, 0), coalesce(l.participants, 0),
           l.last_reply_at, greatest(t.created_at, l.last_reply_at)
      FROM public.forum_topics t
      LEFT JOIN (SELECT p.topic_id, sum(p.reply_count)::integer AS replies, count(*)::integer AS participants,
                        max(p.last_reply_at) AS last_reply_at
                   FROM veritable.participants_truth(p_topics) p GROUP BY p.topic_id) l ON l.topic_id = t.id
     WHERE p_topics IS NULL OR t.id = ANY (p_topics)
$$;

-- Every reply of the topics: its child count as kept and as counted. A
-- parent is always in its children's topic (forum_replies_parent_same_topic).
CREATE OR REPLACE FUNCTION veritable.child_counts_truth(p_topics bigint[])
RETURNS TABLE (id bigint, topic_id bigint, kept integer, truth integer)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.topic_id, r.child_count, coalesce(c.n, 0)::integer
      FROM public.forum_replies r
      LEFT JOIN (SELECT c.parent_id, count(*) AS n FROM public.forum_replies c
                  WHERE c.parent_id IS NOT NULL AND (p_topics IS NULL OR c.topic_id = ANY (p_topics))
                  GROUP BY c.parent_id) c ON c.parent_id = r.id
     WHERE p_topics IS NULL OR r.topic_id = ANY (p_topics)
$$;

-- The counters' pass, for the topics `p_topics` or every topic (NULL):
-- participants found by one full join of the truth against the table,
-- writing only the rows that differ (an upsert of every row locked 764,000
-- rows on 1M replies: 5.3 s + 2.1 s -> 2.1 s), then forum_topic_stats and
-- the replies' child counts. Returns the rows it changed.
--
-- For every topic, writers to replies wait while it runs, so it cannot race
-- them. For some topics, it is called by reconcile_topics, which bounds its
-- waits: it holds those topics' rows, in the writers' lock order
-- (020_replies.sql), before it reads the truth, so every writer to them has
-- either committed (and is counted) or waits for this transaction (and
-- counts itself afterwards).
CREATE OR REPLACE FUNCTION veritable.reconcile_topic_counters(p_topics bigint[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    fixed bigint := 0;
    n bigint;
BEGIN
    IF p_topics IS NULL THEN
        LOCK TABLE public.forum_replies IN SHARE MODE;
    ELSE
        -- The topic rows FOR UPDATE stop new replies, restores and moves into
        -- them (their foreign-key checks take KEY SHARE); the replies stop
        -- deletes, moves out and reparenting; the participant and stats rows
        -- go last, as the writers take them.
        PERFORM 1 FROM public.forum_topics WHERE id = ANY (p_topics) ORDER BY id FOR UPDATE;
        PERFORM 1 FROM public.forum_replies WHERE topic_id = ANY (p_topics) ORDER BY id FOR NO KEY UPDATE;
        PERFORM 1 FROM public.forum_topic_participants WHERE topic_id = ANY (p_topics)
          ORDER BY topic_id, user_id FOR UPDATE;
        PERFORM 1 FROM public.forum_topic_stats WHERE topic_id = ANY (p_topics) ORDER BY topic_id FOR NO KEY UPDATE;
    END IF;

    WITH differ AS (
        SELECT * FROM veritable.participants_drift(p_topics)
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
    WITH truth AS (
        SELECT * FROM veritable.topic_stats_truth(p_topics)
    ), corrected AS (
        UPDATE public.forum_topic_stats s
           SET category_id = truth.category_id, is_pinned = truth.is_pinned, is_deleted = truth.is_deleted,
               reply_count = truth.reply_count, participant_count = truth.participant_count,
               last_reply_at = truth.last_reply_at, last_activity_at = truth.last_activity_at
          FROM truth
         WHERE truth.topic_id = s.topic_id
           AND (s.category_id, s.is_pinned, s.is_deleted, s.reply_count, s.participant_count, s.last_reply_at,
                s.last_activity_at)
               IS DISTINCT FROM (truth.category_id, truth.is_pinned, truth.is_deleted, truth.reply_count,
                                 truth.participant_count, truth.last_reply_at, truth.last_activity_at)
        RETURNING 1
    ), added AS (
        INSERT INTO public.forum_topic_stats (topic_id, category_id, is_pinned, is_deleted, reply_count,
                                              participant_count, last_reply_at, last_activity_at)
        SELECT topic_id, category_id, is_pinned, is_deleted, reply_count, participant_count, last_reply_at,
               last_activity_at
          FROM truth
         WHERE NOT EXISTS (SELECT 1 FROM public.forum_topic_stats s WHERE s.topic_id = truth.topic_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM corrected) + (SELECT count(*) FROM added) INTO n;
    fixed := fixed + n;

    UPDATE public.forum_replies r SET child_count = c.truth
      FROM veritable.child_counts_truth(p_topics) c
     WHERE c.id = r.id AND c.kept <> c.truth;
    GET DIAGNOSTICS n = ROW_COUNT;
    fixed := fixed + n;

    RETURN fixed;
END $$;

CREATE OR REPLACE FUNCTION veritable.reconcile_tag_names() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    -- Tag writers wait while it runs, so it cannot race them.
    LOCK TABLE public.forum_topic_tags, public.forum_tags IN SHARE MODE;
    RETURN veritable.refresh_tag_names(ARRAY(
        SELECT t.id FROM public.forum_topics t
          LEFT JOIN (SELECT tt.topic_id, array_agg(g.name ORDER BY g.name) AS names
                       FROM public.forum_topic_tags tt JOIN public.forum_tags g ON g.id = tt.tag_id
                      GROUP BY tt.topic_id) s ON s.topic_id = t.id
         WHERE t.tag_names IS DISTINCT FROM coalesce(s.names, '{}')));
END $$;

-- Every topic, writers waiting (above). Returns the rows it changed.
CREATE OR REPLACE FUNCTION veritable.reconcile_topic_stats() RETURNS bigint LANGUAGE sql AS $$
    SELECT veritable.reconcile_tag_names() + veritable.reconcile_topic_counters()
$$;

-- The topics of `p_topics` (NULL: of every topic) whose stats row,
-- participants, replies' child counts or tag names differ from the truth, in
-- id order. Reads in one snapshot and locks nothing: the triggers change a
-- reply and what it implies in one transaction, so a topic its writers keep
-- right never shows here, however busy.
--
-- The stats row is checked against the topic's participant rows and its
-- newest live reply (an index probe) rather than against topic_stats_truth:
-- exact all the same, since the next branch checks those participant rows
-- against the replies, and it reads the replies' heap once less (a third of
-- a step's time).
CREATE OR REPLACE FUNCTION veritable.drifted_topics(p_topics bigint[]) RETURNS bigint[] LANGUAGE plpgsql STABLE
SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN (
        SELECT coalesce(array_agg(DISTINCT d.topic_id ORDER BY d.topic_id), '{}') FROM (
            SELECT t.id AS topic_id FROM public.forum_topics t
              LEFT JOIN public.forum_topic_stats s ON s.topic_id = t.id
              LEFT JOIN LATERAL (SELECT coalesce(sum(p.reply_count), 0)::integer AS replies,
                                        count(*)::integer AS participants
                                   FROM public.forum_topic_participants p WHERE p.topic_id = t.id) k ON true
              LEFT JOIN LATERAL (SELECT max(r.created_at) AS last FROM public.forum_replies r
                                  WHERE r.topic_id = t.id AND NOT r.is_deleted) l ON true
             WHERE (p_topics IS NULL OR t.id = ANY (p_topics))
               AND (s.category_id, s.is_pinned, s.is_deleted, s.reply_count, s.participant_count, s.last_reply_at,
                    s.last_activity_at)
                   IS DISTINCT FROM (t.category_id, t.is_pinned, t.is_deleted, k.replies, k.participants, l.last,
                                     greatest(t.created_at, l.last))
            UNION ALL
            SELECT p.topic_id FROM veritable.participants_drift(p_topics) p
            UNION ALL
            SELECT c.topic_id FROM veritable.child_counts_truth(p_topics) c WHERE c.kept <> c.truth
            UNION ALL
            SELECT t.id FROM public.forum_topics t
             WHERE (p_topics IS NULL OR t.id = ANY (p_topics)) AND t.tag_names IS DISTINCT FROM veritable.tag_names_of(t.id)
        ) d);
END $$;

-- Reconciles these topics only, and returns the rows it changed: their
-- counters, participants, replies' child counts and tag names. Writers to
-- other topics never wait for it. Its own waits for a row end (55P03) before
-- PostgreSQL would look for a deadlock (`deadlock_timeout`), so a writer it
-- meets in a cycle is never the one aborted: nothing is changed, and the call
-- can simply be made again.
CREATE OR REPLACE FUNCTION veritable.reconcile_topics(p_topics bigint[]) RETURNS bigint LANGUAGE plpgsql
SET lock_timeout = '500ms'
AS $$
DECLARE
    fixed bigint;
BEGIN
    IF p_topics IS NULL THEN
        RAISE EXCEPTION 'reconcile_topics needs the topics (reconcile_topic_stats() does every one)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('lock_timeout',
        greatest(1, least(500, extract(epoch FROM current_setting('deadlock_timeout')::interval) * 500))::integer::text,
        true);
    fixed := veritable.reconcile_topic_counters(p_topics);
    RETURN fixed + veritable.refresh_tag_names(p_topics);
END $$;

-- Every topic while the site runs, `p_step` topics a transaction: the
-- drifted ones among them are fixed (`reconcile_topics`) and committed before
-- the next step is read. A step whose rows stay busy is tried ten times over
-- about half a second and then left: `unfinished` names those topics (and a
-- WARNING), for another call. `p_duty` bounds its share of a core: after
-- each step it pauses so that it works that fraction of the time (0.25: a
-- step of 1 s, then 3 s of rest). Returns the rows changed (`fixed`). Called
-- outside a transaction block (it commits as it goes):
--   CALL veritable.reconcile_topic_stats_online(p_duty => 0.25);
CREATE OR REPLACE PROCEDURE veritable.reconcile_topic_stats_online(p_step integer DEFAULT 500, p_duty real DEFAULT 1,
    INOUT fixed bigint DEFAULT NULL, INOUT unfinished bigint[] DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    done bigint := 0;   -- the last topic id read
    step bigint[];      -- this step's topics
    drifted bigint[];   -- the ones of them to fix
    tries integer;
    started timestamptz;
BEGIN
    IF p_step IS NULL OR p_step NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'p_step must be between 1 and 100000 topics, not %', p_step
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_duty IS NULL OR p_duty NOT BETWEEN 0.01::real AND 1 THEN
        RAISE EXCEPTION 'p_duty must be between 0.01 and 1 (the share of the time it works), not %', p_duty
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    fixed := 0;
    unfinished := '{}';
    LOOP
        started := clock_timestamp();
        step := ARRAY(SELECT t.id FROM public.forum_topics t WHERE t.id > done ORDER BY t.id LIMIT p_step);
        EXIT WHEN cardinality(step) = 0;
        done := step[cardinality(step)];
        drifted := veritable.drifted_topics(step);
        tries := 0;
        WHILE cardinality(drifted) > 0 LOOP
            BEGIN
                fixed := fixed + veritable.reconcile_topics(drifted);
                drifted := '{}';
            EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
                tries := tries + 1;
                IF tries = 10 THEN
                    RAISE WARNING 'reconcile: topics % stayed busy, left for another call', drifted;
                    unfinished := unfinished || drifted;
                    drifted := '{}';
                ELSE
                    PERFORM pg_sleep(0.01 * tries);
                END IF;
            END;
        END LOOP;
        COMMIT;
        IF p_duty < 1 THEN
            PERFORM pg_sleep(extract(epoch FROM clock_timestamp() - started)::float8 * (1 / p_duty - 1));
        END IF;
    END LOOP;
END $$;
