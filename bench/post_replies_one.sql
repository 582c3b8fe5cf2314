-- One reply per veritable.post_replies call, as the proxy sends a post that
-- finds nothing in flight (:batch true) or a held post (:batch false); :fn
-- names the function, so an earlier definition installed beside it under
-- another name can be timed in turns with it (pgbench -M simple substitutes
-- the name).
\set topic random(1, :topics)
\set author random(4, :users)
SELECT count(reply) FROM veritable.:fn(
    ARRAY[:topic]::bigint[], ARRAY[NULL]::bigint[], ARRAY[:author]::bigint[],
    ARRAY['A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?'],
    ARRAY['post:user:bench' || :author], 100000000, :batch);
