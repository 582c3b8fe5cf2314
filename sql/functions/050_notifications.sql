-- Notifications: each new one is an event for its user.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

CREATE OR REPLACE FUNCTION veritable.notification_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.events (room, kind, payload)
    VALUES ('user:' || NEW.user_id, 'notification.created',
            jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'actor_id', NEW.actor_id, 'topic_id', NEW.topic_id,
                               'reply_id', NEW.reply_id, 'wiki_page_id', NEW.wiki_page_id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER notifications_inserted AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION veritable.notification_inserted();
