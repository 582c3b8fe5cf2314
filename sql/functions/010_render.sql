-- Rendering: every body is sanitized (the extension's render_body) as it is written.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Sanitized HTML (the Rust trigger veritable.render_body fills body_html and
-- render_version from body, whoever writes the row).
CREATE OR REPLACE TRIGGER forum_topics_render BEFORE INSERT OR UPDATE OF body, body_html, render_version ON forum_topics
    FOR EACH ROW EXECUTE FUNCTION veritable.render_body();

CREATE OR REPLACE TRIGGER forum_replies_render BEFORE INSERT OR UPDATE OF body, body_html, render_version ON forum_replies
    FOR EACH ROW EXECUTE FUNCTION veritable.render_body();

CREATE OR REPLACE TRIGGER wiki_revisions_render BEFORE INSERT OR UPDATE OF body, body_html, render_version ON wiki_revisions
    FOR EACH ROW EXECUTE FUNCTION veritable.render_body();
