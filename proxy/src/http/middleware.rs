//! Middleware of every request: request ids, the log span, shedding load,
//! the HTTP metrics, and read-your-writes with replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::{AppError, AppState};

/// Request ids: `x-request-id` from the client when present, else
/// `<random per process>-<counter>`; echoed in the response and carried by
/// every log line of the request (so an internal error the client only sees
/// as `internal` can be found by the id it got back).
#[derive(Clone)]
pub struct RequestIds {
    prefix: u32,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self { prefix: rand::random(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{:08x}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}

pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

/// 503s are the proxy protecting itself (shed, busy, timed out) and are
/// counted in `/metrics`; at ERROR they would flood the log exactly when it
/// is needed. Other failures (500s, broken responses) stay errors.
pub fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    match class {
        ServerErrorsFailureClass::StatusCode(axum::http::StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms = latency.as_millis(), "503: shed, busy or timed out");
        }
        other => tracing::error!(classification = %other, latency_ms = latency.as_millis(), "response failed"),
    }
}

/// Middleware: answer 503 + Retry-After at once when `max_in_flight`
/// requests are being handled, instead of queueing until everything times out.
pub async fn shed_load(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/metrics") {
        return next.run(request).await;
    }
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        return AppError::Busy.into_response();
    };
    next.run(request).await
}

/// Middleware: count and time every request under its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Methods are a label: anything but the standard ones folds into one.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe(&method, &route, response.status(), started.elapsed().as_secs_f64());
    response
}

/// The cookie that carries a write's marker to any proxy (`store::replicas`).
pub const WROTE_COOKIE: &str = "veritable_wrote";

/// Middleware, with replicas configured: a successful write answers with
/// its marker (the `veritable_wrote` cookie, and remembered for its session
/// here); a read runs with the newest marker it carries or its session left
/// as its floor ([`crate::store::READ_FLOOR`]), so it reads from a replica
/// only where that write is visible.
pub async fn read_your_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(replicas) = state.db.replicas().cloned() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let session = super::extract::presented_hash(headers);
    let reads = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if reads {
        let carried = super::extract::cookie(headers, WROTE_COOKIE).and_then(|v| v.parse::<i64>().ok());
        let floor = replicas.floor(carried, session.as_ref());
        return crate::store::READ_FLOOR.scope(floor, next.run(request)).await;
    }
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let marker = replicas.marker_now(session.as_ref());
        let secure = if state.cookie_secure { "; Secure" } else { "" };
        let cookie = format!(
            "{WROTE_COOKIE}={marker}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            replicas.marker_secs()
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(axum::http::header::SET_COOKIE, value);
        }
    }
    response
}
