-- PostgreSQL's ceiling for the proxy's group commit: one veritable.post_replies
-- call with :rows replies on random topics by random authors (pgbench -D rows=16).
SELECT count(reply) FROM veritable.post_replies(
    ARRAY(SELECT 1 + (random() * (:topics - 1))::bigint FROM generate_series(1, :rows)),
    ARRAY(SELECT NULL::bigint FROM generate_series(1, :rows)),
    ARRAY(SELECT 4 + (random() * (:users - 4))::bigint FROM generate_series(1, :rows)),
    ARRAY(SELECT 'A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?'
            FROM generate_series(1, :rows)),
    ARRAY(SELECT 'post:user:bench' || (random() * 1000000)::bigint FROM generate_series(1, :rows)),
    100000000, true);
