-- Each topic carries the names of its tags (`forum_topics.tag_names`, in name
-- order), kept by statement triggers on the tag tables, so a topic page reads
-- them from the row it already reads. Looking them up per topic (an index scan
-- of the topic's tags, a sort, a primary-key probe per tag) was a fifth of
-- veritable.topic_page's time in profiles.
--
-- Tagging is rare next to reading, so the triggers are statement-level with
-- transition tables: a COPY or a multi-row INSERT refreshes each touched topic
-- once. Renaming a tag rewrites the names of every topic carrying it, in the
-- renaming statement (an administrator's operation; a tag on 100,000 topics
-- updates 100,000 rows). veritable.reconcile_topic_stats() also puts drifted
-- names right.

SET LOCAL search_path = public;

ALTER TABLE forum_topics ADD COLUMN tag_names text[] NOT NULL DEFAULT '{}';

-- The truth: a topic's tag names from the tag tables.
CREATE FUNCTION veritable.tag_names_of(p_topic bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}')
      FROM public.forum_topic_tags tt JOIN public.forum_tags g ON g.id = tt.tag_id
     WHERE tt.topic_id = p_topic
$$;

-- Rewrites the names of these topics where they differ from the truth and
-- returns how many changed. Rows are locked in id order first, so two
-- statements refreshing overlapping sets of topics cannot deadlock.
CREATE FUNCTION veritable.refresh_tag_names(p_topics bigint[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
BEGIN
    PERFORM 1 FROM public.forum_topics WHERE id = ANY (p_topics) ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.forum_topics t SET tag_names = truth.names
      FROM (SELECT u.id, veritable.tag_names_of(u.id) AS names FROM unnest(p_topics) AS u (id)) truth
     WHERE t.id = truth.id AND t.tag_names IS DISTINCT FROM truth.names;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END $$;

UPDATE forum_topics t SET tag_names = s.names
  FROM (SELECT tt.topic_id, array_agg(g.name ORDER BY g.name) AS names
          FROM forum_topic_tags tt JOIN forum_tags g ON g.id = tt.tag_id GROUP BY tt.topic_id) s
 WHERE s.topic_id = t.id;

CREATE FUNCTION veritable.topic_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM veritable.refresh_tag_names(ARRAY(SELECT DISTINCT topic_id FROM added));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM veritable.refresh_tag_names(ARRAY(SELECT DISTINCT topic_id FROM removed));
    ELSE
        PERFORM veritable.refresh_tag_names(ARRAY(SELECT topic_id FROM added UNION SELECT topic_id FROM removed));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER forum_topic_tags_added AFTER INSERT ON forum_topic_tags
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();
CREATE TRIGGER forum_topic_tags_removed AFTER DELETE ON forum_topic_tags
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();
CREATE TRIGGER forum_topic_tags_changed AFTER UPDATE ON forum_topic_tags
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();

-- A renamed tag. (Deleting a tag cascades to forum_topic_tags, whose trigger
-- refreshes the topics.) Topic creation's upsert of existing tags "updates"
-- them to the same name: nothing differs, nothing is written.
CREATE FUNCTION veritable.tags_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM veritable.refresh_tag_names(ARRAY(
        SELECT DISTINCT tt.topic_id
          FROM renamed_from o JOIN renamed_to n ON n.id = o.id
          JOIN public.forum_topic_tags tt ON tt.tag_id = n.id
         WHERE n.name IS DISTINCT FROM o.name));
    RETURN NULL;
END $$;

-- Transition tables cannot go with a column list (UPDATE OF name): the
-- function compares the names itself.
CREATE TRIGGER forum_tags_renamed AFTER UPDATE ON forum_tags
    REFERENCING OLD TABLE AS renamed_from NEW TABLE AS renamed_to
    FOR EACH STATEMENT EXECUTE FUNCTION veritable.tags_renamed();

-- reconcile_topic_stats() gains the tag names: the counters' pass keeps its
-- body (and its SET work_mem) under a new name, and the function DBAs call
-- adds the two counts.
ALTER FUNCTION veritable.reconcile_topic_stats() RENAME TO reconcile_topic_counters;

CREATE FUNCTION veritable.reconcile_tag_names() RETURNS bigint LANGUAGE plpgsql AS $$
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

CREATE FUNCTION veritable.reconcile_topic_stats() RETURNS bigint LANGUAGE sql AS $$
    SELECT veritable.reconcile_tag_names() + veritable.reconcile_topic_counters()
$$;
