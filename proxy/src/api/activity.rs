//! `GET /api/v1/users/{id}/activity`: what a user posted and edited.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use crate::http::error::ErrorBody;
use crate::http::extract::{Params, numeric_cursor, page_size, parse_id};
use crate::http::respond::ok_json;
use crate::store::ids::UserId;
use crate::{AppError, AppResult, AppState};

#[derive(Deserialize)]
pub struct ActivityQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

/// `GET /api/v1/users/{id}/activity?cursor=&limit=`: what a user posted and
/// edited, newest first (public).
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/activity",
    operation_id = "activity",
    tag = "users",
    params(
        ("id" = i64, Path, description = "user id"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "items, next_cursor (newest first)", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<ActivityQuery>,
) -> AppResult<Response> {
    let id = parse_id(&id, "user")?;
    let limit = page_size(query.limit)?;
    let cursor = numeric_cursor(query.cursor.as_deref())?;
    state.db.read().await?.user_activity(UserId(id), cursor, limit).await?.map(ok_json).ok_or(AppError::NotFound)
}
