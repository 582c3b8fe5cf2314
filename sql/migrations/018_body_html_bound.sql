-- Stored HTML has a bound that follows from the source limit: the sanitizer
-- refuses output over 8x veritable.max_content_bytes, whose ceiling is
-- 1,000,000 bytes (the body CHECKs), so no body_html is over 8,000,000.
-- NOT VALID then VALIDATE: checking existing rows takes a lock that lets
-- writers go on.

SET LOCAL search_path = public;

ALTER TABLE forum_topics ADD CONSTRAINT forum_topics_body_html_size CHECK (octet_length(body_html) <= 8000000) NOT VALID;
ALTER TABLE forum_replies ADD CONSTRAINT forum_replies_body_html_size CHECK (octet_length(body_html) <= 8000000) NOT VALID;
ALTER TABLE wiki_revisions ADD CONSTRAINT wiki_revisions_body_html_size CHECK (octet_length(body_html) <= 8000000) NOT VALID;
ALTER TABLE forum_topics VALIDATE CONSTRAINT forum_topics_body_html_size;
ALTER TABLE forum_replies VALIDATE CONSTRAINT forum_replies_body_html_size;
ALTER TABLE wiki_revisions VALIDATE CONSTRAINT wiki_revisions_body_html_size;
