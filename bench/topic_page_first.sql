\set cat random(1, 10)
SELECT * FROM veritable.topic_page(:cat, NULL, 20);
