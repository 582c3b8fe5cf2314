//! Prometheus metrics, one registry per server instance (no global state, so
//! tests can run several servers in one process). HTTP metrics are labelled by
//! the route template (`MatchedPath`), never by the raw URI.

use std::time::Instant;

use axum::http::StatusCode;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::cache::CacheCounters;

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    database_up: IntGauge,
    pool_max: IntGauge,
    pool_connections: IntGauge,
    pool_available: IntGauge,
    pool_waiting: IntGauge,
    /// Per statement name; handed to [`crate::store::Db`].
    pub db_query_duration: HistogramVec,
    pub views_flushed: IntCounter,
    pub views_dropped: IntCounter,
    pub shed: IntCounter,
    pub health_probes: IntCounter,
    pub connections_refused: IntCounter,
    pub session_cache: CacheCounters,
    pub realtime: crate::realtime::hub::HubMetrics,
    pub response_cache: CacheCounters,
    pub posting: crate::posting::PostingMetrics,
    pub replicas: crate::store::replicas::ReplicaMetrics,
    posts_queued: IntGauge,
    response_cache_bytes: IntGauge,
    session_cache_bytes: IntGauge,
    session_cache_entries: IntGauge,
    busy_ratio: Gauge,
    alive_tasks: IntGauge,
    scheduling_delay: Histogram,
}

/// Latency buckets in seconds: fine below 10 ms, where this service should live.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("veritable".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route template and status"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route template")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let database_up = IntGauge::new("database_up", "1 when the last database probe succeeded")?;
        let pool_max = IntGauge::new("db_pool_max_connections", "Configured pool size")?;
        let pool_connections = IntGauge::new("db_pool_connections", "Connections the pool holds")?;
        let pool_available = IntGauge::new("db_pool_available", "Idle connections in the pool")?;
        let pool_waiting = IntGauge::new("db_pool_waiting", "Requests waiting for a connection")?;
        let db_query_duration = HistogramVec::new(
            HistogramOpts::new("db_query_duration_seconds", "Statement round trips by statement name")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["statement"],
        )?;
        registry.register(Box::new(db_query_duration.clone()))?;
        let views_flushed = IntCounter::new("topic_views_flushed_total", "Topic views written to PostgreSQL")?;
        let views_dropped = IntCounter::new("topic_views_dropped_total", "Topic views dropped: the batch was full")?;
        let shed = IntCounter::new("http_requests_shed_total", "Requests answered 503 at the in-flight limit")?;
        registry.register(Box::new(views_flushed.clone()))?;
        registry.register(Box::new(views_dropped.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        let health_probes =
            IntCounter::new("health_probes_total", "Database probes run for /healthz (at most one a second)")?;
        registry.register(Box::new(health_probes.clone()))?;
        let connections_refused = IntCounter::new(
            "http_connections_refused_total",
            "Connections answered 503 and closed at the connection cap",
        )?;
        registry.register(Box::new(connections_refused.clone()))?;
        let session_cache = cache_counters(&registry, "session", "session lookups")?;
        let realtime = crate::realtime::metrics(&registry)?;
        let response_cache = cache_counters(&registry, "response", "read responses")?;
        let posting = crate::posting::PostingMetrics {
            batch_rows: Histogram::with_opts(
                HistogramOpts::new("post_batch_rows", "Replies per reply_create statement (group commit)")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )?,
            fallbacks: IntCounter::new(
                "post_batch_fallbacks_total",
                "Batches refused as a whole and posted again one reply at a time",
            )?,
            expired: IntCounter::new(
                "post_queue_expired_total",
                "Reply posts answered 503 unwritten: they waited past the pool timeout for a batch",
            )?,
            held: IntCounter::new(
                "post_held_total",
                "Reply posts a batch left out because a row they need was locked by another transaction",
            )?,
            held_refused: IntCounter::new(
                "post_held_refused_total",
                "Held reply posts answered 503 row_locked at once: every lock waiter was taken",
            )?,
        };
        registry.register(Box::new(posting.batch_rows.clone()))?;
        registry.register(Box::new(posting.fallbacks.clone()))?;
        registry.register(Box::new(posting.expired.clone()))?;
        registry.register(Box::new(posting.held.clone()))?;
        registry.register(Box::new(posting.held_refused.clone()))?;
        let replicas = crate::store::replicas::ReplicaMetrics::register(&registry)?;
        let posts_queued = IntGauge::new("post_queue_length", "Reply posts waiting for a batch")?;
        registry.register(Box::new(posts_queued.clone()))?;
        let response_cache_bytes = IntGauge::new("response_cache_bytes", "Bytes the read-response cache holds")?;
        registry.register(Box::new(response_cache_bytes.clone()))?;
        let session_cache_bytes =
            IntGauge::new("session_cache_bytes", "Bytes the session cache holds (weigher's count)")?;
        let session_cache_entries = IntGauge::new("session_cache_entries", "Sessions the cache holds")?;
        let busy_ratio =
            Gauge::new("tokio_busy_ratio", "Share of the last second the runtime's workers were busy (0..1)")?;
        let alive_tasks = IntGauge::new("tokio_alive_tasks", "Tasks alive in the runtime")?;
        let scheduling_delay = Histogram::with_opts(
            HistogramOpts::new(
                "tokio_scheduling_delay_seconds",
                "Time from spawning a probe task to its first poll (event loop lag)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(session_cache_bytes.clone()))?;
        registry.register(Box::new(session_cache_entries.clone()))?;
        registry.register(Box::new(busy_ratio.clone()))?;
        registry.register(Box::new(alive_tasks.clone()))?;
        registry.register(Box::new(scheduling_delay.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(database_up.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_available.clone()))?;
        registry.register(Box::new(pool_waiting.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            database_up,
            pool_max,
            pool_connections,
            pool_available,
            pool_waiting,
            db_query_duration,
            views_flushed,
            views_dropped,
            shed,
            health_probes,
            connections_refused,
            session_cache,
            realtime,
            response_cache,
            posting,
            replicas,
            posts_queued,
            response_cache_bytes,
            session_cache_bytes,
            session_cache_entries,
            busy_ratio,
            alive_tasks,
            scheduling_delay,
        })
    }

    /// Counts and times one request under its route template.
    pub fn observe(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        self.http_requests.with_label_values(&[method, route, status.as_str()]).inc();
        self.http_duration.with_label_values(&[method, route]).observe(seconds);
    }
}

/// What `/metrics` reports besides the registry's own counters, sampled
/// by its handler when it is scraped.
pub struct Usage {
    pub database_up: bool,
    pub pool: deadpool_postgres::Status,
    pub session_cache: (u64, u64),
    pub response_cache_bytes: u64,
    /// Reply posts waiting for a batch.
    pub posts_queued: usize,
}

impl Metrics {
    /// The registry in the Prometheus text format, with `usage` set first.
    pub fn encode(&self, usage: &Usage) -> Result<Vec<u8>, prometheus::Error> {
        self.database_up.set(i64::from(usage.database_up));
        self.pool_max.set(gauge(usage.pool.max_size));
        self.pool_connections.set(gauge(usage.pool.size));
        self.pool_available.set(gauge(usage.pool.available));
        self.pool_waiting.set(gauge(usage.pool.waiting));
        self.posts_queued.set(gauge(usage.posts_queued));
        let (bytes, entries) = usage.session_cache;
        self.session_cache_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.session_cache_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.response_cache_bytes.set(i64::try_from(usage.response_cache_bytes).unwrap_or(i64::MAX));
        let mut buffer = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(buffer)
    }
}

/// `{cache}_cache_hits_total`, `_misses_total`, `_loads_total` and `_evictions_total`, registered.
fn cache_counters(registry: &Registry, cache: &str, what: &str) -> Result<CacheCounters, prometheus::Error> {
    let counter = |suffix: &str, help: String| -> Result<IntCounter, prometheus::Error> {
        let counter = IntCounter::new(format!("{cache}_cache_{suffix}_total"), help)?;
        registry.register(Box::new(counter.clone()))?;
        Ok(counter)
    };
    Ok(CacheCounters {
        hits: counter("hits", format!("{what} answered from the cache"))?,
        misses: counter("misses", format!("{what} not answered from the cache"))?,
        loads: counter("loads", format!("{what} loaded from PostgreSQL"))?,
        evictions: counter("evictions", format!("{what} evicted to stay within the byte bound"))?,
    })
}

/// Samples the tokio runtime every second until `cancel`: the workers' busy
/// share, alive tasks, and the scheduling delay of a freshly spawned probe
/// task (how long ready work waits for a worker: the "event loop lag").
pub async fn probe_runtime(metrics: std::sync::Arc<Metrics>, cancel: tokio_util::sync::CancellationToken) {
    let runtime = tokio::runtime::Handle::current().metrics();
    let busy = |m: &tokio::runtime::RuntimeMetrics| -> std::time::Duration {
        (0..m.num_workers()).map(|w| m.worker_total_busy_duration(w)).sum()
    };
    let mut last = (Instant::now(), busy(&runtime));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let spawned = Instant::now();
        if let Ok(delay) = tokio::spawn(async move { spawned.elapsed() }).await {
            metrics.scheduling_delay.observe(delay.as_secs_f64());
        }
        let now = (Instant::now(), busy(&runtime));
        let capacity = now.0.duration_since(last.0).as_secs_f64() * runtime.num_workers().max(1) as f64;
        if capacity > 0.0 {
            metrics.busy_ratio.set(((now.1.saturating_sub(last.1)).as_secs_f64() / capacity).min(1.0));
        }
        metrics.alive_tasks.set(gauge(runtime.num_alive_tasks()));
        last = now;
    }
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
