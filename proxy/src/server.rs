//! The HTTP server: `app(state)` builds the router, `run` serves it on a given
//! listener until the given shutdown future completes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::passwords::Hasher;
use crate::sessions::Sessions;
use crate::{AppError, auth, db, forums, health, metrics, people, replies, search, topics, wiki};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: db::Db,
    pub metrics: Arc<Metrics>,
    pub reachability: db::Reachability,
    pub sessions: Arc<Sessions>,
    pub hasher: Hasher,
    /// Mark the session cookie Secure (behind TLS).
    pub cookie_secure: bool,
    pub login_limits: crate::limits::LoginLimits,
    pub post_limit: crate::limits::PostLimit,
    pub write_limit: crate::limits::WriteLimit,
    pub registrations_per_hour: i32,
    /// Searches that may run at once, and for how long each.
    pub search: crate::search::Budget,
    pub views: Arc<topics::Views>,
    /// Hot read responses (topic list pages, categories), byte-bounded, short TTL.
    pub responses: Arc<crate::cache::ResponseCache>,
    /// Permits for requests in flight; none left → 503 at once.
    pub in_flight: Arc<Semaphore>,
    pub realtime: Arc<crate::realtime::Realtime>,
    /// `/healthz`'s remembered probe.
    pub health: Arc<health::Probe>,
}

/// Most distinct topics whose views wait for one flush.
const VIEW_BATCH_TOPICS: usize = 50_000;

pub fn app(state: AppState, config: &ServeConfig) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/me/preferences", get(people::preferences).put(people::save_preferences))
        .route("/api/v1/notifications", get(people::notifications))
        .route("/api/v1/notifications/read", post(people::mark_read))
        .route("/api/v1/users/{id}/activity", get(people::activity))
        .route("/api/v1/wiki/pages", get(wiki::list))
        .route("/api/v1/wiki/pages/{slug}", get(wiki::page).put(wiki::save))
        .route("/api/v1/wiki/pages/{slug}/revisions", get(wiki::revisions))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/ws", get(crate::realtime::ws::upgrade))
        .route("/api/v1/forums/categories", get(forums::categories))
        .route("/api/v1/forums/topics", get(forums::topics).post(topics::create))
        .route("/api/v1/forums/topics/{id}", get(topics::detail).patch(topics::change))
        .route("/api/v1/forums/topics/{id}/replies", get(forums::replies).post(replies::create))
        .route("/api/v1/forums/replies/{id}", patch(replies::edit).delete(replies::delete))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), shed_load))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, config.request_timeout()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(log_failure))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
        .with_state(state)
}

/// Request ids: `x-request-id` from the client when present, else
/// `<random per process>-<counter>`; echoed in the response and carried by
/// every log line of the request (so an internal error the client only sees
/// as `internal` can be found by the id it got back).
#[derive(Clone)]
struct RequestIds {
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

fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

/// 503s are the proxy protecting itself (shed, busy, timed out) and are
/// counted in `/metrics`; at ERROR they would flood the log exactly when it
/// is needed. Other failures (500s, broken responses) stay errors.
fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    match class {
        ServerErrorsFailureClass::StatusCode(axum::http::StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms = latency.as_millis(), "503: shed, busy or timed out");
        }
        other => tracing::error!(classification = %other, latency_ms = latency.as_millis(), "response failed"),
    }
}

/// Middleware: answer 503 + Retry-After at once when `max_in_flight`
/// requests are being handled, instead of queueing until everything times out.
async fn shed_load(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/metrics") {
        return next.run(request).await;
    }
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        return AppError::Busy.into_response();
    };
    next.run(request).await
}

/// Raises the soft open-files limit to the hard one (often 1,024 → 20,000 or
/// more): every client connection is a file descriptor.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
}

/// Connections the kernel completes before the proxy accepts them: the
/// kernel's own cap (somaxconn, 4,096 here) rather than std's 128, at which
/// a burst of connects had SYNs dropped and waited a second to retry
/// (measured: 1 connect in ~400 took 1.01 s).
const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Binds `config.addr` and serves until `shutdown` completes.
pub async fn serve(config: ServeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    raise_open_files_limit();
    let listener = listen(config.addr).with_context(|| format!("cannot listen on {}", config.addr))?;
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
    let db = db::Db::new(pool.clone(), config.db.pgbouncer, metrics.db_query_duration.clone());
    tasks.spawn(metrics::probe_runtime(metrics.clone(), cancel.clone()));
    let realtime = Arc::new(crate::realtime::Realtime::new(
        crate::realtime::hub::Limits {
            per_user: config.ws_per_user,
            per_ip: config.ws_per_ip,
            rooms_per_connection: config.ws_rooms,
            queue: config.ws_queue,
            ping_every: Duration::from_secs(config.ws_ping_secs.max(1)),
            anonymous_presence: config.ws_anonymous_presence,
        },
        metrics.realtime.clone(),
        config.allowed_origins.clone(),
        cancel.clone(),
    ));
    if config.db.pgbouncer && config.listen_url.is_none() {
        tracing::warn!(
            "pgbouncer mode without VERITABLE_LISTEN_URL: LISTEN does not work through pgbouncer; \
                        set it to a direct PostgreSQL URL or realtime stays silent"
        );
    }
    let listen = config.listen_url.clone().unwrap_or_else(|| config.db.url.clone());
    let responses = Arc::new(crate::cache::ResponseCache::new(
        config.read_cache_bytes,
        Duration::from_millis(config.read_cache_ms),
        metrics.response_cache.clone(),
    ));
    let sessions = Arc::new(Sessions::new(
        config.session_cache_bytes,
        Duration::from_millis(config.session_cache_ms),
        metrics.session_cache.clone(),
    ));
    let (presence_tx, presence_rx) = tokio::sync::mpsc::channel(1024);
    let invalidation = crate::realtime::Invalidation { responses: responses.clone(), sessions: sessions.clone() };
    tasks.spawn(crate::realtime::listener::run(
        realtime.hub.clone(),
        listen,
        presence_tx,
        invalidation,
        cancel.clone(),
    ));
    tasks.spawn(crate::realtime::presence::run(
        realtime.hub.clone(),
        db.clone(),
        format!("{:016x}", rand::random::<u64>()),
        Duration::from_secs(config.presence_ttl_secs.max(3)),
        presence_rx,
        cancel.clone(),
    ));
    tasks.spawn(crate::realtime::prune(db.clone(), cancel.clone()));
    let views =
        Arc::new(topics::Views::new(VIEW_BATCH_TOPICS, metrics.views_flushed.clone(), metrics.views_dropped.clone()));
    tasks.spawn(views.clone().run(db.clone(), Duration::from_millis(config.view_flush_ms), cancel.clone()));
    let state = AppState {
        db,
        metrics,
        reachability,
        sessions,
        hasher,
        cookie_secure: config.cookie_secure,
        login_limits: config.login_limits(),
        post_limit: crate::limits::PostLimit { per_minute: config.posts_per_minute },
        write_limit: crate::limits::WriteLimit { per_minute: config.writes_per_minute },
        registrations_per_hour: config.registrations_per_hour,
        search: crate::search::Budget::new(config.search_concurrency, Duration::from_millis(config.search_timeout_ms)),
        views,
        responses,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        realtime: realtime.clone(),
        health: Arc::default(),
    };
    let refused_connections = state.metrics.connections_refused.clone();
    let router = app(state, &config);
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "veritable-proxy listening");

    let stop = cancel.clone();
    let edge = crate::connections::Edge {
        max_connections: config.max_connections,
        header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
    };
    crate::connections::serve(listener, router, edge, refused_connections, async move {
        shutdown.await;
        stop.cancel();
    })
    .await;

    cancel.cancel();
    // Upgraded sockets are not the HTTP server's to wait for: they close
    // with 1001 on `cancel`; give them a moment to say so.
    realtime.drain(Duration::from_secs(5)).await;
    tasks.close();
    tasks.wait().await;
    pool.close();
    tracing::info!("veritable-proxy stopped");
    Ok(())
}
