-- The search statement (proxy/src/search.rs) on 500 candidate replies of 100 KB
-- each, inserted in a transaction that is rolled back: what one search costs
-- without the proxy's time budget (BENCHMARKS.md, "Search").
--   psql -X -h 127.0.0.1 -p 54329 -U veritable -d veritable_test -f bench/search_cost.sql
BEGIN;
SET LOCAL statement_timeout = 0;
INSERT INTO forum_replies (topic_id, author_id, body)
SELECT 3, 1, repeat('zebra stripes and more stripes ', 3200) FROM generate_series(1, 500);
PREPARE search(text, int8, int4, int8) AS
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
     hits AS (
       (SELECT 'topic' AS kind, t.id, t.id AS topic_id, NULL::text AS slug, t.title, t.created_at,
               ts_rank(to_tsvector('english'::regconfig, t.title || ' ' || t.body), q.q) AS rank
          FROM forum_topics t, q
         WHERE to_tsvector('english'::regconfig, t.title || ' ' || t.body) @@ q.q AND NOT t.is_deleted
         LIMIT $4)
       UNION ALL
       (SELECT 'reply', r.id, r.topic_id, NULL, t.title, r.created_at,
               ts_rank(to_tsvector('english'::regconfig, r.body), q.q)
          FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id, q
         WHERE to_tsvector('english'::regconfig, r.body) @@ q.q AND NOT r.is_deleted AND NOT t.is_deleted
         LIMIT $4)
       UNION ALL
       (SELECT 'wiki', p.id, NULL, p.slug, p.title, v.created_at,
               ts_rank(to_tsvector('english'::regconfig, v.title || ' ' || v.body), q.q)
          FROM wiki_revisions v JOIN wiki_pages p ON p.id = v.page_id AND v.revision_number = p.current_revision, q
         WHERE to_tsvector('english'::regconfig, v.title || ' ' || v.body) @@ q.q AND NOT p.is_deleted
         LIMIT $4)),
     page AS (SELECT * FROM hits ORDER BY rank DESC, created_at DESC, kind, id OFFSET $2 LIMIT $3 + 1)
     SELECT json_build_object(
        'items', coalesce((SELECT json_agg(json_build_object('kind', kind, 'id', id, 'topic_id', topic_id, 'slug', slug,
                              'title', title, 'rank', rank, 'created_at', created_at)
                              ORDER BY rank DESC, created_at DESC, kind, id)
                             FROM (SELECT * FROM page ORDER BY rank DESC, created_at DESC, kind, id LIMIT $3) shown), '[]'),
        'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $3 THEN ($2 + $3)::text END)::text;
\timing on
EXECUTE search('zebra stripes', 0, 20, 500);
EXECUTE search('zebra stripes', 0, 20, 500);
EXECUTE search('"zebra stripes and more"', 0, 20, 500);
\timing off
ROLLBACK;
