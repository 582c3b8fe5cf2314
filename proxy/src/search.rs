//! `GET /api/v1/search?q=&cursor=&limit=`: PostgreSQL full-text search over
//! topics, replies and current wiki revisions (GIN expression indexes,
//! migration 010), ranked with `ts_rank`.
//!
//! Bounded: the query is at most 200 characters and 16 words; at most 500
//! matches of each kind are ranked (the first found by the index, so a very
//! common word ranks a sample rather than everything); pages come from those
//! 1,500 at most. Each candidate's rank and phrase check re-read its text,
//! so a search also has a time budget in PostgreSQL (canceled past it: 422)
//! and only a few run at once per proxy (more: 503 at once), so anonymous
//! searches can never hold the pool.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tokio_postgres::types::Type;

use crate::db::Sql;
use crate::params::{Params, numeric_cursor, page_size};
use crate::respond::ok_json;
use crate::server::AppState;
use crate::{AppError, AppResult};

const MAX_QUERY_CHARS: usize = 200;
const MAX_QUERY_WORDS: usize = 16;

/// Searches running at once, and the time each may take in PostgreSQL.
#[derive(Clone)]
pub struct Budget {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    time: std::time::Duration,
}

impl Budget {
    pub fn new(at_once: usize, time: std::time::Duration) -> Self {
        Self { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(at_once.max(1))), time }
    }
}
/// The candidates ranked per kind, and so the deepest offset a cursor reaches.
const CANDIDATES_PER_KIND: i64 = 500;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i32>,
}

/// `$1` query text, `$2` offset, `$3` page size, `$4` candidates per kind.
const SEARCH: Sql = Sql {
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

#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(("q" = String, Query, description = "words, quotes, OR, -word (websearch syntax); 1 to 200 characters"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "ranked items (topic, reply, wiki), next_cursor", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 422, description = "the search took longer than its time budget", body = crate::error::ErrorBody), (status = 503, description = "too many searches at once (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn search(State(state): State<AppState>, Params(query): Params<SearchQuery>) -> AppResult<Response> {
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() || text.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::invalid("q", format!("q is 1 to {MAX_QUERY_CHARS} characters")));
    }
    if text.split_whitespace().count() > MAX_QUERY_WORDS {
        return Err(AppError::invalid("q", format!("q has at most {MAX_QUERY_WORDS} words")));
    }
    let limit = page_size(query.limit)?;
    let offset = numeric_cursor(query.cursor.as_deref())?.unwrap_or(0);
    if offset >= 3 * CANDIDATES_PER_KIND {
        return Err(AppError::invalid("cursor", "not a cursor from this search"));
    }
    let Ok(_slot) = state.search.slots.try_acquire() else { return Err(AppError::Busy) };
    let conn = state.db.get().await?;
    let Some(rows) =
        conn.rows_within(&SEARCH, &[&text, &offset, &limit, &CANDIDATES_PER_KIND], state.search.time).await?
    else {
        return Err(AppError::Unprocessable {
            field: "q",
            message: "this search takes too long; make it more specific".into(),
        });
    };
    let row = rows.into_iter().next().ok_or_else(|| AppError::Internal(anyhow::anyhow!("search returned no row")))?;
    Ok(ok_json(row.get::<_, String>(0)))
}
