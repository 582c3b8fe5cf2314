-- Full-text search over topics, replies and wiki revisions: GIN expression
-- indexes on the English text-search vector of each body. The expressions
-- here and in the proxy's search statement must match character for
-- character, or the planner cannot use these indexes.

SET LOCAL search_path = public;

CREATE INDEX forum_topics_search_idx ON forum_topics
    USING gin (to_tsvector('english'::regconfig, title || ' ' || body));
CREATE INDEX forum_replies_search_idx ON forum_replies
    USING gin (to_tsvector('english'::regconfig, body));
CREATE INDEX wiki_revisions_search_idx ON wiki_revisions
    USING gin (to_tsvector('english'::regconfig, title || ' ' || body));
