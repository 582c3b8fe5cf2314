\set topic random(1, :topics)
\set author random(1, :users)
INSERT INTO forum_replies (topic_id, author_id, body)
SELECT 1 + (:topic + g * 7919) % :topics, 1 + (:author + g * 104729) % :users,
       'A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It says something about postgres and its indexes, then asks a question about latency?'
  FROM generate_series(1, :rows) AS g
 ORDER BY 1;
