-- Topic tag names kept on the topic row by statement triggers.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- The truth: a topic's tag names from the tag tables.
CREATE OR REPLACE FUNCTION veritable.tag_names_of(p_topic bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}')
      FROM public.forum_topic_tags tt JOIN public.forum_tags g ON g.id = tt.tag_id
     WHERE tt.topic_id = p_topic
$$;

-- Rewrites the names of these topics where they differ from the truth and
-- returns how many changed. Rows are locked in id order first, so two
-- statements refreshing overlapping sets of topics cannot deadlock.
CREATE OR REPLACE FUNCTION veritable.refresh_tag_names(p_topics bigint[]) RETURNS bigint LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION veritable.topic_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE TRIGGER forum_topic_tags_added AFTER INSERT ON forum_topic_tags
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();

CREATE OR REPLACE TRIGGER forum_topic_tags_removed AFTER DELETE ON forum_topic_tags
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();

CREATE OR REPLACE TRIGGER forum_topic_tags_changed AFTER UPDATE ON forum_topic_tags
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION veritable.topic_tags_changed();

-- A renamed tag. (Deleting a tag cascades to forum_topic_tags, whose trigger
-- refreshes the topics.) Topic creation's upsert of existing tags "updates"
-- them to the same name: nothing differs, nothing is written.
CREATE OR REPLACE FUNCTION veritable.tags_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE TRIGGER forum_tags_renamed AFTER UPDATE ON forum_tags
    REFERENCING OLD TABLE AS renamed_from NEW TABLE AS renamed_to
    FOR EACH STATEMENT EXECUTE FUNCTION veritable.tags_renamed();
