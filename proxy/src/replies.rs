//! Writing replies: create, edit, soft delete. Each is one statement (the
//! triggers do the rest in the same transaction); serialization failures and
//! deadlocks are retried by [`crate::db::Conn::write`].
//!
//! Lock order, the same for every write path: the author's rate-limit row,
//! then reply rows (the reply, or the parent whose child count changes), then
//! the topic's participant row, then the topic row.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_postgres::types::Type;

use crate::auth::{CurrentUser, Writer, judge};
use crate::db::Sql;
use crate::error::refused;
use crate::params::{Body, parse_id, require_text};
use crate::respond::{created, ok_json};
use crate::server::AppState;
use crate::{AppError, AppResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    body: String,
    parent_id: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyEdit {
    body: String,
}

/// The reply as the API returns it (a macro so it can be `concat!`ed into
/// the statements below).
macro_rules! reply_json {
    () => {
        "json_build_object('id', r.id, 'topic_id', r.topic_id, 'parent_id', r.parent_id, 'depth', r.depth,
    'author_id', r.author_id, 'body', r.body, 'body_html', r.body_html, 'is_deleted', r.is_deleted,
    'created_at', r.created_at, 'edited_at', r.edited_at)::text"
    };
}

/// Counts the post against the author's limit, then inserts; returns the
/// seconds to wait (0 when allowed), whether the topic is locked (NULL when
/// it does not exist) and the stored reply.
const INSERT: Sql = Sql {
    name: "reply_create",
    types: &[Type::INT8, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::INT4],
    text: concat!(
        "WITH limited AS (SELECT veritable.rate_limit($5, $6, interval '1 minute') AS wait),
         inserted AS (
           INSERT INTO forum_replies AS r (topic_id, parent_id, author_id, body)
           SELECT t.id, $2, $3, $4 FROM forum_topics t, limited
            WHERE limited.wait = 0 AND t.id = $1 AND NOT t.is_deleted AND NOT t.is_locked
           RETURNING ",
        reply_json!(),
        " AS reply)
         SELECT (SELECT wait FROM limited),
                (SELECT is_locked FROM forum_topics WHERE id = $1 AND NOT is_deleted),
                (SELECT reply FROM inserted)"
    ),
};

/// The reply's author and its topic's lock state (no row: no such live
/// reply), and the changed reply when `$4` (may moderate) or the caller wrote
/// it and the topic is open.
const EDIT: Sql = Sql {
    name: "reply_edit",
    types: &[Type::INT8, Type::TEXT, Type::INT8, Type::BOOL],
    text: concat!(
        "WITH target AS (
           SELECT r.id, r.author_id, t.is_locked FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id
            WHERE r.id = $1 AND NOT r.is_deleted AND NOT t.is_deleted),
         changed AS (
           UPDATE forum_replies r SET body = $2, edited_at = now(), updated_at = now() FROM target
            WHERE r.id = target.id AND NOT r.is_deleted AND ($4 OR (target.author_id = $3 AND NOT target.is_locked))
           RETURNING ",
        reply_json!(),
        " AS reply)
         SELECT target.author_id, target.is_locked, (SELECT reply FROM changed) FROM target"
    ),
};

/// Soft delete: the reply keeps its place as a tombstone when it has children.
const DELETE: Sql = Sql {
    name: "reply_delete",
    types: &[Type::INT8, Type::INT8, Type::BOOL],
    text: "WITH target AS (
           SELECT r.id, r.author_id, t.is_locked FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id
            WHERE r.id = $1 AND NOT r.is_deleted AND NOT t.is_deleted),
         changed AS (
           UPDATE forum_replies r SET is_deleted = true, updated_at = now() FROM target
            WHERE r.id = target.id AND NOT r.is_deleted AND ($3 OR (target.author_id = $2 AND NOT target.is_locked))
           RETURNING r.id)
         SELECT target.author_id, target.is_locked, (SELECT id FROM changed) FROM target",
};

/// `POST /api/v1/forums/topics/{id}/replies` → 201 with the stored reply
/// (its sanitized HTML included); 404 for a missing topic, 409 for a locked
/// one, 422 for a parent outside the topic, 429 past the posting limit.
#[utoipa::path(post, path = "/api/v1/forums/topics/{id}/replies", tag = "forums", params(("id" = i64, Path, description = "topic id")), request_body = NewReply, responses((status = 201, description = "the stored reply", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody), (status = 409, description = "conflict", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(topic): Path<String>,
    Body(reply): Body<NewReply>,
) -> AppResult<Response> {
    let topic = parse_id(&topic, "topic")?;
    require_text("body", &reply.body)?;
    if reply.parent_id.is_some_and(|p| p < 1) {
        return Err(AppError::Unprocessable { field: "parent_id", message: "parent_id must be a reply id".into() });
    }
    let key = state.post_limit.key(user.session.user_id);
    let row = state
        .db
        .get()
        .await?
        .write(
            &INSERT,
            &[&topic, &reply.parent_id, &user.session.user_id, &reply.body, &key, &state.post_limit.per_minute],
        )
        .await
        .map_err(|e| refused(e, "parent_id"))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("reply_create returned no row")))?;
    crate::limits::check_wait(row.get(0))?;
    match (row.get::<_, Option<bool>>(1), row.get::<_, Option<String>>(2)) {
        (_, Some(json)) => Ok(created(json)),
        (Some(true), None) => Err(AppError::Conflict { field: "topic", message: "the topic is locked".into() }),
        _ => Err(AppError::NotFound),
    }
}

/// `PATCH /api/v1/forums/replies/{id}` `{"body": "..."}` → 200 with the
/// reply; 403 for someone else's reply, 409 in a locked topic (moderators
/// may do both).
#[utoipa::path(patch, path = "/api/v1/forums/replies/{id}", tag = "forums", params(("id" = i64, Path, description = "reply id")), request_body = ReplyEdit, responses((status = 200, description = "the edited reply", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 403, description = "not allowed", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody), (status = 409, description = "conflict", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    Writer(user): Writer,
    Path(id): Path<String>,
    Body(edit): Body<ReplyEdit>,
) -> AppResult<Response> {
    let id = parse_id(&id, "reply")?;
    require_text("body", &edit.body)?;
    let moderator = user.session.may_moderate();
    let row = state
        .db
        .get()
        .await?
        .write(&EDIT, &[&id, &edit.body, &user.session.user_id, &moderator])
        .await
        .map_err(|e| refused(e, "id"))?
        .ok_or(AppError::NotFound)?;
    judge(&user, row.get(0), row.get(1), row.get::<_, Option<String>>(2)).map(ok_json)
}

/// `DELETE /api/v1/forums/replies/{id}` → 204 (a soft delete; replies under
/// it stay, under a tombstone). Same rules as editing.
#[utoipa::path(delete, path = "/api/v1/forums/replies/{id}", tag = "forums", params(("id" = i64, Path, description = "reply id")), responses((status = 204, description = "soft-deleted"), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 403, description = "not allowed", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody), (status = 409, description = "conflict", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Writer(user): Writer,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = parse_id(&id, "reply")?;
    let moderator = user.session.may_moderate();
    let row = state
        .db
        .get()
        .await?
        .write(&DELETE, &[&id, &user.session.user_id, &moderator])
        .await?
        .ok_or(AppError::NotFound)?;
    judge(&user, row.get(0), row.get(1), row.get::<_, Option<i64>>(2))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
