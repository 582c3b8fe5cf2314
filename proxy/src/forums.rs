//! Forum reads: categories, topic pages (`veritable.topic_page`) and reply
//! trees (`veritable.reply_tree`). PostgreSQL builds the JSON, so each
//! request is one round trip and the proxy copies bytes.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use veritable_core::cursor::TopicKey;

use tokio_postgres::types::Type;

use crate::db::Sql;
use crate::params::Params;
use crate::respond::ok_json;
use crate::server::AppState;
use crate::{AppError, AppResult};

/// Reply walks: the extension's ceilings.
const MAX_DEPTH: i32 = 1_000;
/// Rows of one reply page over HTTP: what a page of a UI shows, far below
/// the SQL function's ceiling (a DBA may ask for 10,000).
const MAX_ROWS: i32 = 500;

const CATEGORIES: Sql = Sql {
    name: "categories",
    types: &[],
    text: "SELECT coalesce(json_agg(c ORDER BY c.position, c.id), '[]')::text
   FROM (SELECT id, slug, name, description, position FROM forum_categories ORDER BY position, id LIMIT 1000) c",
};

/// `GET /api/v1/forums/categories` (at most 1,000).
#[utoipa::path(get, path = "/api/v1/forums/categories", tag = "forums", responses((status = 200, description = "items", body = Object), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn categories(State(state): State<AppState>) -> AppResult<Response> {
    let body = state
        .responses
        .get_or_load("categories".to_owned(), async {
            let row = state.db.get().await?.one(&CATEGORIES, &[]).await?;
            Ok(format!("{{\"items\":{}}}", row.get::<_, String>(0)))
        })
        .await?;
    Ok(ok_json(body))
}

#[derive(Debug, Deserialize)]
pub struct TopicsQuery {
    category: Option<i64>,
    cursor: Option<String>,
    limit: Option<i32>,
}

const TOPICS: Sql = Sql {
    name: "topic_page",
    types: &[Type::INT8, Type::TEXT, Type::INT4],
    text: "SELECT json_build_object(
        'items', coalesce(json_agg(to_jsonb(p) - 'next_cursor' - 'ordinality' ORDER BY p.ordinality), '[]'),
        'next_cursor', max(p.next_cursor))::text
   FROM veritable.topic_page($1, $2, $3) WITH ORDINALITY AS p",
};

/// `GET /api/v1/forums/topics?category=&cursor=&limit=`: pinned first, then
/// by last activity; pass `next_cursor` back for the next page.
#[utoipa::path(get, path = "/api/v1/forums/topics", tag = "forums", params(("category" = Option<i64>, Query, description = "category id; all when absent"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "items (pinned first, then by last activity), next_cursor", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn topics(State(state): State<AppState>, Params(query): Params<TopicsQuery>) -> AppResult<Response> {
    let limit = crate::params::page_size(query.limit)?;
    if let Some(cursor) = &query.cursor {
        TopicKey::decode(cursor).map_err(|e| AppError::invalid("cursor", e.to_string()))?;
    }
    let key = format!("topics:{:?}:{}:{limit}", query.category, query.cursor.as_deref().unwrap_or(""));
    let body = state
        .responses
        .get_or_load(key, async {
            let row = state.db.get().await?.one(&TOPICS, &[&query.category, &query.cursor, &limit]).await?;
            Ok(row.get(0))
        })
        .await?;
    Ok(ok_json(body))
}

#[derive(Debug, Deserialize)]
pub struct RepliesQuery {
    depth: Option<i32>,
    limit: Option<i32>,
    after: Option<i64>,
}

const REPLIES: Sql = Sql {
    name: "reply_tree",
    types: &[Type::INT8, Type::INT4, Type::INT4, Type::INT8],
    text: "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM forum_topics WHERE id = $1 AND NOT is_deleted) THEN NULL
        ELSE json_build_object(
            'items', coalesce(json_agg(to_jsonb(r) - 'has_more' - 'ordinality' ORDER BY r.ordinality), '[]'),
            'has_more', coalesce(bool_or(r.has_more), false))::text END
   FROM veritable.reply_tree($1, $2, $3, $4) WITH ORDINALITY AS r",
};

/// `GET /api/v1/forums/topics/{id}/replies?depth=&limit=&after=`: the reply
/// tree in display order; when `has_more`, ask again with `after` = the last
/// item's id; below an item with `children_cut`, walk it with a subtree call.
#[utoipa::path(get, path = "/api/v1/forums/topics/{id}/replies", tag = "forums", params(("id" = i64, Path, description = "topic id"), ("depth" = Option<i32>, Query, description = "depth cap, 1 to 1000 (GUC default 10)"), ("limit" = Option<i32>, Query, description = "row cap, 1 to 500 (GUC default 500); a page also ends at veritable.max_reply_bytes (1 MB) of HTML"), ("after" = Option<i64>, Query, description = "continue after this reply id")), responses((status = 200, description = "items in display order, has_more", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody)))]
pub async fn replies(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    Params(query): Params<RepliesQuery>,
) -> AppResult<Response> {
    let topic: i64 = topic.parse().map_err(|_| AppError::invalid("id", "the topic id must be a number"))?;
    if let Some(depth) = query.depth.filter(|d| !(1..=MAX_DEPTH).contains(d)) {
        return Err(AppError::invalid("depth", format!("depth must be between 1 and {MAX_DEPTH}, got {depth}")));
    }
    if let Some(limit) = query.limit.filter(|l| !(1..=MAX_ROWS).contains(l)) {
        return Err(AppError::invalid("limit", format!("limit must be between 1 and {MAX_ROWS}, got {limit}")));
    }
    if query.after.is_some_and(|a| a < 1) {
        return Err(AppError::invalid("after", "after must be the id of a reply"));
    }
    let row = match state.db.get().await?.opt(&REPLIES, &[&topic, &query.depth, &query.limit, &query.after]).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(AppError::NotFound),
        // The extension refuses an `after` that is not a row of this walk.
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE) => {
            return Err(AppError::invalid("after", "after is not a reply of this walk"));
        }
        Err(error) => return Err(error.into()),
    };
    row.get::<_, Option<String>>(0).map(ok_json).ok_or(AppError::NotFound)
}
