//! A user's preferences: cold data, loaded only here, never per request.

use axum::extract::State;
use axum::response::Response;

use crate::http::error::{ErrorBody, refused};
use crate::http::extract::{Body, CurrentUser, Writer};
use crate::http::respond::ok_json;
use crate::store::ids::UserId;
use crate::{AppError, AppResult, AppState};

/// Preferences are a JSON object of at most this many bytes (the column's CHECK).
const MAX_PREFERENCES_BYTES: usize = veritable_core::rules::PREFERENCES_MAX_BYTES;

/// `GET /api/v1/me/preferences`: the stored object (`{}` at first).
#[utoipa::path(
    get,
    path = "/api/v1/me/preferences",
    operation_id = "preferences",
    tag = "users",
    responses(
        (status = 200, description = "the preferences object", body = Object),
        (status = 401, description = "no valid session", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn show(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let preferences =
        state.db.read().await?.preferences(UserId(user.session.user_id)).await?.ok_or(AppError::Unauthorized)?;
    Ok(ok_json(preferences))
}

/// `PUT /api/v1/me/preferences` with a JSON object: replaces them all.
#[utoipa::path(
    put,
    path = "/api/v1/me/preferences",
    operation_id = "save_preferences",
    tag = "users",
    request_body = Object,
    responses(
        (status = 200, description = "the stored object", body = Object),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn save(
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
        .preferences_save(UserId(user.session.user_id), &text)
        .await
        .map_err(|e| refused(e, "body"))?
        .ok_or(AppError::Unauthorized)?;
    Ok(ok_json(row.get::<_, String>(0)))
}
