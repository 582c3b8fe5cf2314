\set topic random(1, :topics)
\set author random(1, :users)
INSERT INTO forum_replies (topic_id, author_id, body)
VALUES (:topic, :author, 'A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It says something about postgres and its indexes, then asks a question about latency?');
