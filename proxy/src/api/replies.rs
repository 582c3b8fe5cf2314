//! Replies: the tree of a topic (`veritable.reply_tree`, JSON built in
//! PostgreSQL), create, edit, soft delete. Each write is one statement (the
//! triggers do the rest in the same transaction); serialization failures and
//! deadlocks are retried by [`crate::store::Conn::write`].
//!
//! Lock order, the same for every write path: the author's rate-limit row,
//! then reply rows (the reply, or the parent whose child count changes), then
//! the topic's participant row, then the topic row.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::cache::{Shows, Wrote};
use crate::http::error::{ErrorBody, refused};
use crate::http::extract::{Body, CurrentUser, Params, Writer, judge, parse_id, presented_hash, require_text};
use crate::http::respond::{created, ok_json};
use crate::posting::Post;
use crate::store::forums::ReplyOutcome;
use crate::store::ids::{ReplyId, TopicId, UserId};
use crate::{AppError, AppResult, AppState};

use veritable_core::rules::{REPLY_DEPTH_CEILING as MAX_DEPTH, REPLY_ROWS_HTTP as MAX_ROWS};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepliesQuery {
    /// Levels walked, 1 to 1000 (GUC default 10).
    depth: Option<i32>,
    /// Row cap, 1 to 500 (GUC default 500); a page also ends at veritable.max_reply_bytes (1 MB) of HTML.
    limit: Option<i32>,
    /// Continue after this reply id.
    after: Option<i64>,
}

/// What the extension refuses of a walk, as the client's error: a root
/// that does not exist (P0002), an `after` that is not a row of the walk.
fn walk_refused(error: tokio_postgres::Error) -> AppError {
    use tokio_postgres::error::SqlState;
    match error.code() {
        Some(code) if *code == SqlState::NO_DATA_FOUND => AppError::NotFound,
        Some(code) if *code == SqlState::INVALID_PARAMETER_VALUE => {
            AppError::invalid("after", "after is not a reply of this walk")
        }
        _ => error.into(),
    }
}

impl RepliesQuery {
    fn check(&self) -> AppResult<()> {
        if let Some(depth) = self.depth.filter(|d| !(1..=MAX_DEPTH).contains(d)) {
            return Err(AppError::invalid("depth", format!("depth must be between 1 and {MAX_DEPTH}, got {depth}")));
        }
        if let Some(limit) = self.limit.filter(|l| !(1..=MAX_ROWS).contains(l)) {
            return Err(AppError::invalid("limit", format!("limit must be between 1 and {MAX_ROWS}, got {limit}")));
        }
        if self.after.is_some_and(|a| a < 1) {
            return Err(AppError::invalid("after", "after must be the id of a reply"));
        }
        Ok(())
    }
}

/// `GET /api/v1/forums/topics/{id}/replies?depth=&limit=&after=`: the reply
/// tree in display order; when `has_more`, ask again with `after` = the last
/// item's id; below an item with `children_cut`, walk it with a subtree call.
#[utoipa::path(
    get,
    path = "/api/v1/forums/topics/{id}/replies",
    operation_id = "replies",
    tag = "forums",
    params(("id" = i64, Path, description = "topic id"), RepliesQuery),
    responses(
        (status = 200, description = "items in display order, has_more", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn tree(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Params(query): Params<RepliesQuery>,
) -> AppResult<Response> {
    let topic: i64 = topic.parse().map_err(|_| AppError::invalid("id", "the topic id must be a number"))?;
    query.check()?;
    // Continuations read from a replica when one has the reader's writes;
    // the cache fills from the primary, so the events that drop it are
    // never ahead of what refills it.
    let load = async |on_replica: bool| {
        let conn = if on_replica { state.db.read().await? } else { state.db.get().await? };
        match conn.reply_tree(TopicId(topic), query.depth, query.limit, query.after.map(ReplyId)).await {
            Ok(Some(tree)) => Ok(tree),
            Ok(None) => Err(AppError::NotFound),
            Err(error) => Err(walk_refused(error)),
        }
    };
    // The first page is what every visitor of the topic reads: cached (one
    // load per key however many miss at once), kept true by the topic's
    // events within the cache's refresh bound, and fresh for its writer.
    if query.after.is_some() {
        return Ok(ok_json(load(true).await?));
    }
    let key = format!("tree:{topic}:{:?}:{:?}", query.depth, query.limit);
    let reader = presented_hash(&headers);
    let body = state.responses.get_or_load_for(reader.as_ref(), Shows::Tree(topic), &headers, key, load(false)).await?;
    Ok(body.respond(&headers))
}

/// `GET /api/v1/forums/replies/{id}/replies?depth=&limit=&after=`: the reply
/// and the replies below it, in the tree's shape (the reply first, `depth`
/// counted from the topic). Continues a thread where the tree set
/// `children_cut`; with `depth=1&limit=1`, the one reply a `reply.created`
/// event names.
#[utoipa::path(
    get,
    path = "/api/v1/forums/replies/{id}/replies",
    operation_id = "reply_subtree",
    tag = "forums",
    params(("id" = i64, Path, description = "reply id"), RepliesQuery),
    responses(
        (status = 200, description = "items in display order, has_more", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn subtree(
    State(state): State<AppState>,
    Path(reply): Path<String>,
    Params(query): Params<RepliesQuery>,
) -> AppResult<Response> {
    let reply: i64 = reply.parse().map_err(|_| AppError::invalid("id", "the reply id must be a number"))?;
    query.check()?;
    let conn = state.db.read().await?;
    match conn.reply_subtree(ReplyId(reply), query.depth, query.limit, query.after.map(ReplyId)).await {
        Ok(Some(tree)) => Ok(ok_json(tree)),
        Ok(None) => Err(AppError::NotFound),
        Err(error) => Err(walk_refused(error)),
    }
}

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

/// `POST /api/v1/forums/topics/{id}/replies` → 201 with the stored reply
/// (its sanitized HTML included); 404 for a missing topic, 409 for a locked
/// one, 422 for a parent outside the topic, 429 past the posting limit.
#[utoipa::path(
    post,
    path = "/api/v1/forums/topics/{id}/replies",
    tag = "forums",
    params(("id" = i64, Path, description = "topic id")),
    request_body = NewReply,
    responses(
        (status = 201, description = "the stored reply", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
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
    let outcome = state
        .posting
        .post(Post {
            topic: TopicId(topic),
            parent: reply.parent_id.map(ReplyId),
            author: UserId(user.session.user_id),
            body: reply.body,
            key: state.post_limit.key(user.session.user_id),
        })
        .await?;
    crate::limits::check_wait(outcome.wait)?;
    match outcome {
        ReplyOutcome { reply: Some(json), category: Some(category), .. } => {
            state.responses.wrote(&user.token_hash, Wrote { category: Some(category), topic: Some(topic) });
            Ok(created(json))
        }
        ReplyOutcome { locked: None, .. } => Err(AppError::NotFound),
        ReplyOutcome { locked: Some(true), .. } => {
            Err(AppError::Conflict { field: "topic", message: "the topic is locked".into() })
        }
        ReplyOutcome { parent_ok: false, .. } => {
            Err(AppError::Unprocessable { field: "parent_id", message: "parent_id does not exist here".into() })
        }
        ReplyOutcome { .. } => Err(AppError::Internal(anyhow::anyhow!("reply_create wrote nothing and said why not"))),
    }
}

/// `PATCH /api/v1/forums/replies/{id}` `{"body": "..."}` → 200 with the
/// reply; 403 for someone else's reply, 409 in a locked topic (moderators
/// may do both).
#[utoipa::path(
    patch,
    path = "/api/v1/forums/replies/{id}",
    tag = "forums",
    params(("id" = i64, Path, description = "reply id")),
    request_body = ReplyEdit,
    responses(
        (status = 200, description = "the edited reply", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
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
        .reply_edit(ReplyId(id), &edit.body, UserId(user.session.user_id), moderator)
        .await
        .map_err(|e| refused(e, "id"))?
        .ok_or(AppError::NotFound)?;
    let edited = judge(&user, row.get(0), row.get(1), row.get::<_, Option<String>>(2))?;
    // Which topic is not known here: the writer's next reads of every list
    // and tree are fresh.
    state.responses.wrote(&user.token_hash, Wrote { category: None, topic: None });
    Ok(ok_json(edited))
}

/// `DELETE /api/v1/forums/replies/{id}` → 204 (a soft delete; replies under
/// it stay, under a tombstone). Same rules as editing.
#[utoipa::path(
    delete,
    path = "/api/v1/forums/replies/{id}",
    tag = "forums",
    params(("id" = i64, Path, description = "reply id")),
    responses(
        (status = 204, description = "soft-deleted"),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
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
        .reply_delete(ReplyId(id), UserId(user.session.user_id), moderator)
        .await?
        .ok_or(AppError::NotFound)?;
    judge(&user, row.get(0), row.get(1), row.get::<_, Option<i64>>(2))?;
    state.responses.wrote(&user.token_hash, Wrote { category: None, topic: None });
    Ok(StatusCode::NO_CONTENT.into_response())
}
