-- Wiki revisions: the page's current revision and events.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- A new revision becomes the page's current one.
CREATE OR REPLACE FUNCTION veritable.wiki_revision_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    page_slug text;
BEGIN
    UPDATE public.wiki_pages
       SET current_revision = greatest(current_revision, NEW.revision_number),
           title = CASE WHEN NEW.revision_number >= current_revision THEN NEW.title ELSE title END,
           updated_at = now()
     WHERE id = NEW.page_id
    RETURNING slug INTO page_slug;
    INSERT INTO public.unified_activity (user_id, kind, wiki_page_id, wiki_revision_id, created_at)
    VALUES (NEW.author_id, 'wiki_revised', NEW.page_id, NEW.id, NEW.created_at);
    INSERT INTO public.events (room, kind, payload)
    VALUES ('wiki:' || page_slug, 'wiki.revised',
            jsonb_build_object('page_id', NEW.page_id, 'revision_id', NEW.id,
                               'revision_number', NEW.revision_number, 'author_id', NEW.author_id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER wiki_revisions_inserted AFTER INSERT ON wiki_revisions
    FOR EACH ROW EXECUTE FUNCTION veritable.wiki_revision_inserted();
