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

use crate::http::error::ErrorBody;
use crate::http::extract::{Params, numeric_cursor, page_size};
use crate::http::respond::ok_json;
use crate::{AppError, AppResult, AppState};

const MAX_QUERY_CHARS: usize = 200;
const MAX_QUERY_WORDS: usize = 16;

/// The candidates ranked per kind, and so the deepest offset a cursor reaches.
const CANDIDATES_PER_KIND: i64 = 500;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "search",
    params(
        ("q" = String, Query, description = "words, quotes, OR, -word (websearch syntax); 1 to 200 characters"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "ranked items (topic, reply, wiki), next_cursor", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 422, description = "the search took longer than its time budget", body = ErrorBody),
        (status = 503, description = "too many searches at once (Retry-After)", body = ErrorBody),
    ),
)]
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
    let conn = state.db.read().await?;
    let Some(rows) = conn.search(text, offset, limit, CANDIDATES_PER_KIND, state.search.time).await? else {
        return Err(AppError::Unprocessable {
            field: "q",
            message: "this search takes too long; make it more specific".into(),
        });
    };
    let row = rows.into_iter().next().ok_or_else(|| AppError::Internal(anyhow::anyhow!("search returned no row")))?;
    Ok(ok_json(row.get::<_, String>(0)))
}
