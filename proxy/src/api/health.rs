//! Operations: `GET /healthz` (200 when the database answers through the
//! pool, else 503) and `GET /metrics` (Prometheus). The health answer is
//! remembered for a second ([`crate::store::Probe`]), so a load balancer or
//! a flood of probes costs the database at most one `SELECT 1` a second per
//! proxy.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::error::ErrorBody;
use crate::metrics::Usage;
use crate::{AppError, AppResult, AppState};

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "the database answers (probed at most once a second)", body = Object),
        (status = 503, description = "database unavailable, or this proxy is shutting down (`draining`)", body = ErrorBody),
    ),
)]
pub async fn healthz(State(state): State<AppState>) -> AppResult<Json<Value>> {
    if state.health.draining() {
        return Err(AppError::Draining);
    }
    if !state.health.database_answers(state.db.pool(), &state.metrics.health_probes).await {
        return Err(AppError::DatabaseDown);
    }
    Ok(Json(json!({ "status": "ok", "database": "ok" })))
}

/// `GET /metrics` in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    ),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let usage = Usage {
        database_up: state.reachability.is_up(),
        pool: state.db.pool().status(),
        session_cache: state.sessions.usage(),
        response_cache_bytes: state.responses.usage().await.0,
        posts_queued: state.posting.queued(),
    };
    match state.metrics.encode(&usage) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], Body::from(text)).into_response(),
        Err(error) => AppError::Internal(error.into()).into_response(),
    }
}
