//! `GET /healthz`: 200 when the database answers through the pool, else 503.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::server::AppState;
use crate::{AppError, AppResult, db};

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the database answers", body = Object), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> AppResult<Json<Value>> {
    db::ping(state.db.pool()).await.map_err(AppError::DatabaseUnavailable)?;
    Ok(Json(json!({ "status": "ok", "database": "ok" })))
}
