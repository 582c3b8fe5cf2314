//! `POST /api/v1/preview`: Markdown rendered as a reply or a wiki page would
//! store it, for the reply box's and the wiki editor's preview. Nothing is
//! written and PostgreSQL is not asked: the proxy runs the same renderer
//! (`veritable_core::sanitize`, the code the extension's trigger runs) with
//! the same default size limit and cost bounds, on the blocking pool.
//!
//! Bounded: signed-in users only; at most `VERITABLE_PREVIEW_CONCURRENCY`
//! (2) renders at once per proxy (more: 503 `busy` at once, as a search;
//! 0 turns previews off); the input is at most
//! `veritable.max_content_bytes`' default (a refusal is 422, as the post
//! itself would be). A database whose DBA changed that setting may refuse a
//! post the preview rendered; the post's own answer is the one that counts.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use veritable_core::{rules, sanitize};

use crate::http::error::ErrorBody;
use crate::http::extract::{Body, CurrentUser};
use crate::{AppError, AppResult, AppState};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// Markdown, as a reply's or a wiki revision's `body`.
    body: String,
}

/// `POST /api/v1/preview` `{"body": "..."}` → `{"body_html": "..."}`.
#[utoipa::path(
    post,
    path = "/api/v1/preview",
    tag = "forums",
    request_body = Preview,
    responses(
        (status = 200, description = "the sanitized HTML the body would be stored with: body_html", body = Object),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 422, description = "the body breaks a size or cost bound", body = ErrorBody),
        (status = 503, description = "too many previews at once (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn render(
    State(state): State<AppState>,
    _user: CurrentUser,
    Body(preview): Body<Preview>,
) -> AppResult<Json<Value>> {
    let Ok(permit) = state.previews.clone().try_acquire_owned() else { return Err(AppError::Busy) };
    let limit = usize::try_from(rules::CONTENT_BYTES_DEFAULT).unwrap_or(0);
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        sanitize::render_markdown(&preview.body, limit)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the preview render stopped: {e}")))?;
    match rendered {
        Ok(html) => Ok(Json(json!({ "body_html": html }))),
        Err(refusal) => Err(AppError::Unprocessable { field: "body", message: refusal.to_string() }),
    }
}
