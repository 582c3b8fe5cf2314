//! Full-text search.

use std::time::Duration;

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::{Conn, Sql};

/// `$1` query text, `$2` offset, `$3` page size, `$4` candidates per kind.
pub const SEARCH: Sql = Sql {
    name: "search",
    types: &[Type::TEXT, Type::INT8, Type::INT4, Type::INT8],
    text: "WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
     hits AS (
       (SELECT 'topic' AS kind, t.id, t.id AS topic_id, NULL::text AS slug, t.title, t.created_at,
               ts_rank(to_tsvector('english'::regconfig, t.title || ' ' || t.body), q.q) AS rank
          FROM forum_topics t, q
         WHERE to_tsvector('english'::regconfig, t.title || ' ' || t.body) @@ q.q AND NOT t.is_deleted
         LIMIT $4)
       UNION ALL
       (SELECT 'reply', r.id, r.topic_id, NULL, t.title, r.created_at,
               ts_rank(to_tsvector('english'::regconfig, r.body), q.q)
          FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id, q
         WHERE to_tsvector('english'::regconfig, r.body) @@ q.q AND NOT r.is_deleted AND NOT t.is_deleted
         LIMIT $4)
       UNION ALL
       (SELECT 'wiki', p.id, NULL, p.slug, p.title, v.created_at,
               ts_rank(to_tsvector('english'::regconfig, v.title || ' ' || v.body), q.q)
          FROM wiki_revisions v JOIN wiki_pages p ON p.id = v.page_id AND v.revision_number = p.current_revision, q
         WHERE to_tsvector('english'::regconfig, v.title || ' ' || v.body) @@ q.q AND NOT p.is_deleted
         LIMIT $4)),
     page AS (SELECT * FROM hits ORDER BY rank DESC, created_at DESC, kind, id OFFSET $2 LIMIT $3 + 1)
     SELECT json_build_object(
        'items', coalesce((SELECT json_agg(json_build_object('kind', kind, 'id', id, 'topic_id', topic_id, 'slug', slug,
                              'title', title, 'rank', rank, 'created_at', created_at)
                              ORDER BY rank DESC, created_at DESC, kind, id)
                             FROM (SELECT * FROM page ORDER BY rank DESC, created_at DESC, kind, id LIMIT $3) shown), '[]'),
        'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $3 THEN ($2 + $3)::text END)::text",
};

impl Conn {
    /// The ranked page of hits; None when the statement ran past `within`
    /// and was canceled.
    pub async fn search(
        &self,
        text: &str,
        offset: i64,
        limit: i32,
        candidates: i64,
        within: Duration,
    ) -> Result<Option<Vec<Row>>, tokio_postgres::Error> {
        self.rows_within(&SEARCH, &[&text, &offset, &limit, &candidates], within).await
    }
}
