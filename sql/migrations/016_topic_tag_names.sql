-- Each topic carries the names of its tags (`forum_topics.tag_names`, in name
-- order), kept by statement triggers on the tag tables, so a topic page reads
-- them from the row it already reads. Looking them up per topic (an index scan
-- of the topic's tags, a sort, a primary-key probe per tag) was a fifth of
-- veritable.topic_page's time in profiles.
--
-- Tagging is rare next to reading, so the triggers are statement-level with
-- transition tables: a COPY or a multi-row INSERT refreshes each touched topic
-- once. Renaming a tag rewrites the names of every topic carrying it, in the
-- renaming statement (an administrator's operation; a tag on 100,000 topics
-- updates 100,000 rows). veritable.reconcile_topic_stats() also puts drifted
-- names right.

-- The functions and triggers this migration created are kept, in their current
-- definitions, in sql/functions/ (100_tag_names and 110_reconcile).

SET LOCAL search_path = public;

ALTER TABLE forum_topics ADD COLUMN tag_names text[] NOT NULL DEFAULT '{}';

UPDATE forum_topics t SET tag_names = s.names
  FROM (SELECT tt.topic_id, array_agg(g.name ORDER BY g.name) AS names
          FROM forum_topic_tags tt JOIN forum_tags g ON g.id = tt.tag_id GROUP BY tt.topic_id) s
 WHERE s.topic_id = t.id;
