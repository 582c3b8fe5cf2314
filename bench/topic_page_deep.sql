SELECT * FROM veritable.topic_page(NULL, :deep_cursor, 20);
