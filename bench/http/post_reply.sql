-- The proxy's reply INSERT (proxy/src/replies.rs), as pgbench runs it. The key is
-- 'post:user:<id>'; spelled with chr(58) because pgbench substitutes :user even inside quotes.
\set topic random(1, :topics)
\set uid random(4, 35)
WITH limited AS (SELECT veritable.rate_limit(concat('post', chr(58), 'user', chr(58), (:uid)::text), 100000000, interval '1 minute') AS wait),
     inserted AS (
       INSERT INTO forum_replies AS r (topic_id, parent_id, author_id, body)
       SELECT t.id, NULL, (:uid)::bigint, 'A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?'
         FROM forum_topics t, limited
        WHERE limited.wait = 0 AND t.id = :topic AND NOT t.is_deleted AND NOT t.is_locked
       RETURNING json_build_object('id', r.id, 'topic_id', r.topic_id, 'parent_id', r.parent_id, 'depth', r.depth,
                 'author_id', r.author_id, 'body', r.body, 'body_html', r.body_html, 'is_deleted', r.is_deleted,
                 'created_at', r.created_at, 'edited_at', r.edited_at)::text AS reply)
SELECT (SELECT wait FROM limited),
       (SELECT is_locked FROM forum_topics WHERE id = :topic AND NOT is_deleted),
       (SELECT reply FROM inserted);
