//! A user's own notifications: the list, and marking them read.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::http::error::ErrorBody;
use crate::http::extract::{Body, CurrentUser, Params, Writer, numeric_cursor, page_size};
use crate::http::respond::ok_json;
use crate::store::ids::UserId;
use crate::{AppError, AppResult, AppState};

#[derive(Deserialize)]
pub struct NotificationsQuery {
    #[serde(default)]
    unread: bool,
    cursor: Option<String>,
    limit: Option<i32>,
}

/// `GET /api/v1/notifications?unread=true&cursor=&limit=`: one's own, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    operation_id = "notifications",
    tag = "users",
    params(
        ("unread" = Option<bool>, Query, description = "only unread ones"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "items, next_cursor", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Params(query): Params<NotificationsQuery>,
) -> AppResult<Response> {
    let limit = page_size(query.limit)?;
    let cursor = numeric_cursor(query.cursor.as_deref())?;
    let page = state.db.read().await?.notifications(UserId(user.session.user_id), query.unread, cursor, limit).await?;
    Ok(ok_json(page))
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

/// `POST /api/v1/notifications/read` → `{"marked": n}` (only one's own
/// unread notifications change; other ids are ignored).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/read",
    tag = "users",
    request_body = MarkRead,
    responses(
        (status = 200, description = "marked: how many changed", body = Object),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
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
    let marked = state.db.get().await?.notifications_read(UserId(user.session.user_id), mark.all, &mark.ids).await?;
    Ok(ok_json(format!("{{\"marked\":{marked}}}")))
}
