-- Topics: their stats row, mentions and events.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

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

CREATE OR REPLACE TRIGGER forum_topics_inserted AFTER INSERT ON forum_topics
    FOR EACH ROW EXECUTE FUNCTION veritable.topic_inserted();

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

CREATE OR REPLACE TRIGGER forum_topics_updated AFTER UPDATE OF title, body, category_id, is_pinned, is_locked, is_deleted ON forum_topics
    FOR EACH ROW EXECUTE FUNCTION veritable.topic_updated();
