SELECT * FROM veritable.topic_page(NULL, NULL, 20);
