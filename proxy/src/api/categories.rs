//! `GET /api/v1/forums/categories`. PostgreSQL builds the JSON, so each
//! request is one round trip and the proxy copies bytes.

use axum::extract::State;
use axum::response::Response;

use crate::http::error::ErrorBody;
use crate::{AppResult, AppState};
use axum::http::HeaderMap;

/// `GET /api/v1/forums/categories` (at most 1,000).
#[utoipa::path(
    get,
    path = "/api/v1/forums/categories",
    tag = "forums",
    responses(
        (status = 200, description = "items", body = Object),
        (status = 503, description = "overloaded or database unavailable (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn categories(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    let body = state
        .responses
        .get_or_load(&headers, "categories".to_owned(), async {
            let items = state.db.get().await?.categories().await?;
            Ok(format!("{{\"items\":{items}}}"))
        })
        .await?;
    Ok(body.respond(&headers))
}
