//! `GET /healthz`: 200 when the database answers through the pool, else 503.
//! The answer is remembered for a second, so a load balancer or a flood of
//! probes costs the database at most one `SELECT 1` a second per proxy.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::server::AppState;
use crate::{AppError, AppResult, db};

/// How long one probe's outcome answers `/healthz`.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last probe: when it ran and whether the database answered. The
/// mutex also makes concurrent callers share one probe instead of each
/// taking a connection.
#[derive(Default)]
pub struct Probe {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Probe {
    async fn database_answers(&self, pool: &deadpool_postgres::Pool, probes: &prometheus::IntCounter) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, up)) = *last
            && at.elapsed() < FRESH_FOR
        {
            return up;
        }
        probes.inc();
        let up = match db::ping(pool).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "health probe: database unavailable");
                false
            }
        };
        *last = Some((Instant::now(), up));
        up
    }
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the database answers (probed at most once a second)", body = Object), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> AppResult<Json<Value>> {
    if !state.health.database_answers(state.db.pool(), &state.metrics.health_probes).await {
        return Err(AppError::DatabaseDown);
    }
    Ok(Json(json!({ "status": "ok", "database": "ok" })))
}
