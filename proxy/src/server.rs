//! The server: `run` builds the state, spawns the background tasks, serves
//! the router of [`crate::http::router`] on a given listener until the given
//! shutdown future completes, then drains.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::ResponseCache;
use crate::config::ServeConfig;
use crate::limits::{LoginLimits, PostLimit, SearchBudget, WriteLimit};
use crate::metrics::Metrics;
use crate::passwords::Hasher;
use crate::posting::{self, Posting};
use crate::realtime::Realtime;
use crate::sessions::Sessions;
use crate::state::{AppState, Shared};
use crate::store::views::Views;
use crate::{http, metrics, realtime, store};

/// Most distinct topics whose views wait for one flush.
const VIEW_BATCH_TOPICS: usize = 50_000;

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
    let pool = store::pool(&config.db)?;
    let metrics = Arc::new(Metrics::new()?);
    let reachability = store::Reachability::default();
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    tasks.spawn(crate::limits::sweep(pool.clone(), cancel.clone()));
    tasks.spawn(store::watch(
        pool.clone(),
        store::describe_target(&config.db.url),
        reachability.clone(),
        cancel.clone(),
    ));

    let hasher = Hasher::new(config.hash_parallelism(), config.hash_wait());
    let replicas = store::replicas(&config.db, &metrics.replicas)?;
    if let Some(replicas) = &replicas {
        tasks.spawn(replicas.clone().watch(cancel.clone()));
    }
    let db =
        store::Db::new(pool.clone(), config.db.pgbouncer, metrics.db_query_duration.clone()).with_replicas(replicas);
    tasks.spawn(metrics::probe_runtime(metrics.clone(), cancel.clone()));
    let realtime = Arc::new(Realtime::new(
        realtime::hub::Limits {
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
    let responses = Arc::new(ResponseCache::new(
        config.read_cache_bytes,
        Duration::from_millis(config.read_cache_ms),
        Duration::from_millis(config.read_cache_page_ms),
        Duration::from_millis(config.read_cache_refresh_ms),
        metrics.response_cache.clone(),
    ));
    tasks.spawn(responses.clone().refresh_lists(cancel.clone()));
    let sessions = Arc::new(Sessions::new(
        config.session_cache_bytes,
        Duration::from_millis(config.session_cache_ms),
        Duration::from_millis(config.session_stale_ms),
        metrics.session_cache.clone(),
        tasks.clone(),
    ));
    let (presence_tx, presence_rx) = tokio::sync::mpsc::channel(1024);
    let invalidation = realtime::Invalidation { responses: responses.clone(), sessions: sessions.clone() };
    // This proxy's name among the others: its presence rows and its listener's cursor.
    let instance = format!("{:016x}", rand::random::<u64>());
    tasks.spawn(realtime::listener::run(
        realtime.hub.clone(),
        instance.clone(),
        listen,
        presence_tx,
        invalidation,
        cancel.clone(),
    ));
    tasks.spawn(realtime::presence::run(
        realtime.hub.clone(),
        db.clone(),
        instance,
        Duration::from_secs(config.presence_ttl_secs.max(3)),
        presence_rx,
        cancel.clone(),
    ));
    tasks.spawn(realtime::prune(db.clone(), cancel.clone()));
    let views = Arc::new(Views::new(VIEW_BATCH_TOPICS, metrics.views_flushed.clone(), metrics.views_dropped.clone()));
    tasks.spawn(views.clone().run(db.clone(), Duration::from_millis(config.view_flush_ms), cancel.clone()));
    let posting = Posting::start(
        db.clone(),
        posting::Settings {
            batches: config.post_batches,
            max_rows: config.post_batch_rows,
            standing_rows: config.post_batch_rows_standing,
            queue: config.post_queue,
            max_wait: Duration::from_millis(config.post_wait_ms),
            lock_waiters: config.post_lock_waiters,
            per_minute: config.posts_per_minute,
        },
        metrics.posting.clone(),
        &tasks,
        cancel.clone(),
    );
    let health: Arc<crate::store::Probe> = Arc::default();
    let state = AppState::new(Shared {
        db,
        metrics,
        reachability,
        sessions,
        hasher,
        cookie_secure: config.cookie_secure,
        login_limits: LoginLimits::of(&config),
        post_limit: PostLimit { per_minute: config.posts_per_minute },
        posting,
        write_limit: WriteLimit { per_minute: config.writes_per_minute },
        registrations_per_hour: config.registrations_per_hour,
        previews: Arc::new(Semaphore::new(config.preview_concurrency)),
        search: SearchBudget::new(config.search_concurrency, Duration::from_millis(config.search_timeout_ms)),
        views,
        responses,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        body_limit_bytes: config.body_limit_bytes,
        realtime: realtime.clone(),
        health: health.clone(),
    });
    // Before the first accept: connections arriving meanwhile wait in the
    // listen backlog, not in a request's deadline.
    let warmed = state.db.warm(config.db.connect_timeout()).await;
    tracing::info!(connections = warmed, "pool warmed");
    let refused_connections = state.metrics.connections_refused.clone();
    let router = http::router(state, &config);
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "veritable-proxy listening");

    let stop = cancel.clone();
    let edge = http::connections::Edge {
        max_connections: config.max_connections,
        header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
    };
    let drain_delay = Duration::from_millis(config.drain_delay_ms);
    http::connections::serve(listener, router, edge, refused_connections, async move {
        shutdown.await;
        // Still serving, but out of rotation: balancers checking /healthz
        // stop sending new requests before this proxy stops accepting them.
        health.drain();
        tracing::info!(delay_ms = drain_delay.as_millis(), "draining: /healthz answers 503 before the listener closes");
        tokio::time::sleep(drain_delay).await;
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
