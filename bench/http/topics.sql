SELECT json_build_object(
        'items', coalesce(json_agg(to_jsonb(p) - 'next_cursor' - 'ordinality' ORDER BY p.ordinality), '[]'),
        'next_cursor', max(p.next_cursor))::text
   FROM veritable.topic_page(NULL, NULL, 20) WITH ORDINALITY AS p;
