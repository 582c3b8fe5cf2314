//! The HTTP server: `app(state)` builds the router, `run` serves it on a given
//! listener until the given shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::passwords::Hasher;
use crate::sessions::Sessions;
use crate::{AppError, auth, db, forums, health, metrics, replies};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    pub reachability: db::Reachability,
    pub sessions: Arc<Sessions>,
    pub hasher: Hasher,
    /// Mark the session cookie Secure (behind TLS).
    pub cookie_secure: bool,
    pub login_limits: crate::limits::LoginLimits,
}

pub fn app(state: AppState, config: &ServeConfig) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/forums/categories", get(forums::categories))
        .route("/api/v1/forums/topics", get(forums::topics))
        .route("/api/v1/forums/topics/{id}/replies", get(forums::replies).post(replies::create))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout(),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Binds `config.addr` and serves until `shutdown` completes.
pub async fn serve(config: ServeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    run(listener, config, shutdown).await
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight
/// requests, stops every background task and closes the pool.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = db::pool(&config.db)?;
    let metrics = Arc::new(Metrics::new()?);
    let reachability = db::Reachability::default();
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    tasks.spawn(crate::limits::sweep(pool.clone(), cancel.clone()));
    tasks.spawn(db::watch(pool.clone(), db::describe_target(&config.db.url), reachability.clone(), cancel.clone()));

    let hasher = Hasher::new(config.hash_parallelism(), config.pool_timeout_for_hashing());
    let state = AppState {
        pool: pool.clone(),
        metrics,
        reachability,
        sessions: Arc::new(Sessions::new(config.session_cache_bytes)),
        hasher,
        cookie_secure: config.cookie_secure,
        login_limits: config.login_limits(),
    };
    let router = app(state, &config);
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "veritable-proxy listening");

    let stop = cancel.clone();
    let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await;

    cancel.cancel();
    tasks.close();
    tasks.wait().await;
    pool.close();
    tracing::info!("veritable-proxy stopped");
    served.context("HTTP server failed")
}
