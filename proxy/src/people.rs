//! What belongs to a user: notifications, the activity feed, preferences
//! (cold data, loaded only here, never per request).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use tokio_postgres::types::Type;

use crate::auth::{CurrentUser, Writer};
use crate::db::Sql;
use crate::params::parse_id;
use crate::params::{Body, Params, numeric_cursor, page_size};
use crate::respond::ok_json;
use crate::server::AppState;
use crate::{AppError, AppResult};

#[derive(Deserialize)]
pub struct NotificationsQuery {
    #[serde(default)]
    unread: bool,
    cursor: Option<String>,
    limit: Option<i32>,
}

const NOTIFICATIONS: Sql = Sql {
    name: "notifications",
    types: &[Type::INT8, Type::BOOL, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT ",
        crate::page_json!("$4"),
        "
   FROM (SELECT row_number() OVER (ORDER BY n.id DESC) AS n, n.id::text AS key,
                json_build_object('id', n.id, 'kind', n.kind,
                    'actor', CASE WHEN a.id IS NOT NULL THEN json_build_object('id', a.id, 'username', a.username) END,
                    'topic_id', n.topic_id, 'reply_id', n.reply_id, 'wiki_page_id', n.wiki_page_id,
                    'data', n.data, 'read_at', n.read_at, 'created_at', n.created_at) AS item
           FROM notifications n LEFT JOIN users a ON a.id = n.actor_id
          WHERE n.user_id = $1 AND (NOT $2 OR n.read_at IS NULL) AND n.id < coalesce($3, 9223372036854775807)
          ORDER BY n.id DESC LIMIT $4 + 1) p"
    ),
};

/// `GET /api/v1/notifications?unread=true&cursor=&limit=`: one's own, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "users", params(("unread" = Option<bool>, Query, description = "only unread ones"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "items, next_cursor", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Params(query): Params<NotificationsQuery>,
) -> AppResult<Response> {
    let limit = page_size(query.limit)?;
    let cursor = numeric_cursor(query.cursor.as_deref())?;
    let row =
        state.db.get().await?.one(&NOTIFICATIONS, &[&user.session.user_id, &query.unread, &cursor, &limit]).await?;
    Ok(ok_json(row.get::<_, String>(0)))
}

/// Most notifications one request marks by id.
const MAX_MARK: usize = 1_000;

/// `{"ids": [..]}` or `{"all": true}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
}

const MARK_READ: Sql = Sql {
    name: "notifications_read",
    types: &[Type::INT8, Type::BOOL, Type::INT8_ARRAY],
    text: "WITH marked AS (
       UPDATE notifications SET read_at = now()
        WHERE user_id = $1 AND read_at IS NULL AND ($2 OR id = ANY($3))
       RETURNING 1)
     SELECT count(*) FROM marked",
};

/// `POST /api/v1/notifications/read` → `{"marked": n}` (only one's own
/// unread notifications change; other ids are ignored).
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "users", request_body = MarkRead, responses((status = 200, description = "marked: how many changed", body = Object), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn mark_read(
    State(state): State<AppState>,
    Writer(user): Writer,
    Body(mark): Body<MarkRead>,
) -> AppResult<Response> {
    if mark.all != mark.ids.is_empty() {
        return Err(AppError::Unprocessable { field: "ids", message: "give either ids or \"all\": true".into() });
    }
    if mark.ids.len() > MAX_MARK {
        return Err(AppError::Unprocessable { field: "ids", message: format!("at most {MAX_MARK} ids at once") });
    }
    let row = state.db.get().await?.write(&MARK_READ, &[&user.session.user_id, &mark.all, &mark.ids]).await?;
    let marked: i64 = row.map_or(0, |r| r.get(0));
    Ok(ok_json(format!("{{\"marked\":{marked}}}")))
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

const ACTIVITY: Sql = Sql {
    name: "user_activity",
    types: &[Type::INT8, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = $1 AND NOT is_deleted) THEN NULL
        ELSE ",
        crate::page_json!("$3"),
        " END
   FROM (SELECT row_number() OVER (ORDER BY a.id DESC) AS n, a.id::text AS key,
                json_build_object('id', a.id, 'kind', a.kind, 'topic_id', a.topic_id, 'topic_title', t.title,
                    'reply_id', a.reply_id, 'wiki_slug', w.slug, 'wiki_revision_id', a.wiki_revision_id,
                    'created_at', a.created_at) AS item
           FROM unified_activity a
           LEFT JOIN forum_topics t ON t.id = a.topic_id
           LEFT JOIN wiki_pages w ON w.id = a.wiki_page_id
          WHERE a.user_id = $1 AND a.id < coalesce($2, 9223372036854775807)
            AND (t.id IS NULL OR NOT t.is_deleted)
          ORDER BY a.id DESC LIMIT $3 + 1) p"
    ),
};

/// `GET /api/v1/users/{id}/activity?cursor=&limit=`: what a user posted and
/// edited, newest first (public).
#[utoipa::path(get, path = "/api/v1/users/{id}/activity", tag = "users", params(("id" = i64, Path, description = "user id"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "items, next_cursor (newest first)", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody)))]
pub async fn activity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<ActivityQuery>,
) -> AppResult<Response> {
    let id = parse_id(&id, "user")?;
    let limit = page_size(query.limit)?;
    let cursor = numeric_cursor(query.cursor.as_deref())?;
    let row = state.db.get().await?.one(&ACTIVITY, &[&id, &cursor, &limit]).await?;
    row.get::<_, Option<String>>(0).map(ok_json).ok_or(AppError::NotFound)
}

/// Preferences are a JSON object of at most this many bytes (the column's CHECK).
const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

const PREFERENCES: Sql =
    Sql { name: "preferences", types: &[Type::INT8], text: "SELECT preferences::text FROM users WHERE id = $1" };

const SAVE_PREFERENCES: Sql = Sql {
    name: "preferences_save",
    types: &[Type::INT8, Type::TEXT],
    text: "UPDATE users SET preferences = $2::jsonb, updated_at = now() WHERE id = $1 RETURNING preferences::text",
};

/// `GET /api/v1/me/preferences`: the stored object (`{}` at first).
#[utoipa::path(get, path = "/api/v1/me/preferences", tag = "users", responses((status = 200, description = "the preferences object", body = Object), (status = 401, description = "no valid session", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn preferences(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let row = state.db.get().await?.opt(&PREFERENCES, &[&user.session.user_id]).await?.ok_or(AppError::Unauthorized)?;
    Ok(ok_json(row.get::<_, String>(0)))
}

/// `PUT /api/v1/me/preferences` with a JSON object: replaces them all.
#[utoipa::path(put, path = "/api/v1/me/preferences", tag = "users", request_body = Object, responses((status = 200, description = "the stored object", body = Object), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn save_preferences(
    State(state): State<AppState>,
    Writer(user): Writer,
    Body(preferences): Body<serde_json::Value>,
) -> AppResult<Response> {
    if !preferences.is_object() {
        return Err(AppError::Unprocessable { field: "body", message: "preferences are a JSON object".into() });
    }
    let text = preferences.to_string();
    if text.len() > MAX_PREFERENCES_BYTES {
        return Err(AppError::Unprocessable {
            field: "body",
            message: format!("at most {MAX_PREFERENCES_BYTES} bytes"),
        });
    }
    let row = state
        .db
        .get()
        .await?
        .write(&SAVE_PREFERENCES, &[&user.session.user_id, &text])
        .await
        .map_err(|e| crate::error::refused(e, "body"))?
        .ok_or(AppError::Unauthorized)?;
    Ok(ok_json(row.get::<_, String>(0)))
}
