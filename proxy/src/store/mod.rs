//! Connections to PostgreSQL: the bounded request pool, direct connections for
//! the command-line tools, and the watcher that reports reachability.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::time::Instant;

use tokio::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, QueueMode, RecyclingMethod, Runtime};
use prometheus::HistogramVec;
use tokio::task::JoinHandle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row};
use tokio_util::sync::CancellationToken;

use crate::config::DbConfig;

pub mod forums;
pub mod idempotency;
pub mod ids;
pub mod limits;
pub mod migrate;
pub mod people;
pub mod realtime;
pub mod replicas;
pub mod search;
pub mod sessions;
pub mod users;
pub mod views;
pub mod wiki;

/// Every statement the proxy runs through the pool, each behind one typed
/// method of [`Conn`] in the module of its resource. The EXPLAIN test plans
/// each of these, exactly as the code runs it.
pub const ALL: &[&Sql] = &[
    &users::PREFERENCES,
    &users::SAVE_PREFERENCES,
    &users::TAKEN,
    &users::REGISTER,
    &users::FIND,
    &forums::TOPIC_CREATE,
    &forums::TOPIC_DETAIL,
    &forums::TOPIC_CHANGE,
    &forums::TOPIC_VIEWS,
    &forums::REPLY_CREATE,
    &forums::REPLY_EDIT,
    &forums::REPLY_DELETE,
    &forums::CATEGORIES,
    &forums::TOPIC_PAGE,
    &forums::REPLY_TREE,
    &forums::REPLY_SUBTREE,
    &people::NOTIFICATIONS,
    &people::MARK_READ,
    &people::ACTIVITY,
    &search::SEARCH,
    &wiki::PAGES,
    &wiki::PAGE,
    &wiki::SAVE,
    &wiki::REVISIONS,
    &limits::HIT,
    &realtime::TOPIC_EXISTS,
    &realtime::CATEGORY_EXISTS,
    &realtime::WIKI_EXISTS,
    &realtime::BACKLOG,
    &realtime::OLDEST,
    &realtime::PRESENCE_OF,
    &realtime::TYPING,
    &realtime::PRESENCE_SYNC,
    &sessions::LOOKUP,
    &sessions::CREATE,
    &sessions::REVOKE,
    &idempotency::CLAIM,
    &idempotency::STORE,
];

/// The statement named `name` with `$n` replaced by `substitutions[n]`;
/// an error names what is missing or unknown.
pub fn statement_text(name: &str, substitutions: &[(usize, String)]) -> Result<String, String> {
    let sql = ALL.iter().find(|s| s.name == name).ok_or_else(|| format!("no statement named {name}"))?;
    let mut text = sql.text.to_owned();
    // Highest first, so `$1` never eats the start of `$10`.
    for n in (1..=sql.types.len()).rev() {
        let (_, expr) = substitutions.iter().find(|(i, _)| *i == n).ok_or_else(|| format!("{name} needs ${n}"))?;
        text = text.replace(&format!("${n}"), expr);
    }
    if let Some((n, _)) = substitutions.iter().find(|(n, _)| *n == 0 || *n > sql.types.len()) {
        return Err(format!("{name} has no ${n}"));
    }
    Ok(text)
}

/// `veritable-proxy statement [NAME [N=EXPR]...]`.
pub fn statement_cli(name: Option<&str>, substitutions: &[(usize, String)]) -> anyhow::Result<()> {
    match name {
        None => {
            for sql in ALL {
                let types: Vec<&str> = sql.types.iter().map(Type::name).collect();
                println!("{}\t{}", sql.name, types.join(","));
            }
        }
        Some(name) => println!("{};", statement_text(name, substitutions).map_err(anyhow::Error::msg)?),
    }
    Ok(())
}

/// The request pool: at most `pool_size` connections; a checkout waits at most
/// `pool_timeout`, so an exhausted pool answers 503 instead of hanging.
pub fn pool(config: &DbConfig) -> anyhow::Result<Pool> {
    pool_of(config, &config.url, usize::from(config.pool_size))
}

/// A pool of at most `size` connections to `url`, with `config`'s timeouts.
fn pool_of(config: &DbConfig, url: &tokio_postgres::Config, size: usize) -> anyhow::Result<Pool> {
    let mut pg = url.clone();
    pg.connect_timeout(config.connect_timeout());
    if pg.get_application_name().is_none() {
        pg.application_name("veritable-proxy");
    }
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    // The connection used last is handed out first: a quiet proxy keeps
    // reusing one or two backends, whose caches (catalog, plans, PL/pgSQL
    // functions, the CPU's) are warm, instead of going round all of them.
    // Round robin over a warm pool of 16 cost a lone post about a fifth more
    // CPU in PostgreSQL (BENCHMARKS.md, "One request at a time").
    let pool = Pool::builder(manager)
        .queue_mode(QueueMode::Lifo)
        .max_size(size)
        .wait_timeout(Some(config.pool_timeout()))
        .create_timeout(Some(config.connect_timeout()))
        .recycle_timeout(Some(config.connect_timeout()))
        .runtime(Runtime::Tokio1)
        .build()?;
    Ok(pool)
}

/// The replicas of `VERITABLE_REPLICA_URLS` (None when it is empty): a read
/// pool as large as the primary's and a probe connection each, and one
/// probe connection to the primary for its WAL position.
pub fn replicas(
    config: &DbConfig,
    metrics: &replicas::ReplicaMetrics,
) -> anyhow::Result<Option<Arc<replicas::Replicas>>> {
    if config.replica_urls.is_empty() {
        return Ok(None);
    }
    let mut members = Vec::with_capacity(config.replica_urls.len());
    for url in &config.replica_urls {
        let reads = pool_of(config, url, usize::from(config.pool_size))?;
        let probe = pool_of(config, url, 1)?;
        members.push(replicas::Replica::new(describe_target(url), reads, probe, metrics));
    }
    let settings = replicas::Settings {
        max_lag: Duration::from_millis(config.replica_max_lag_ms),
        every: Duration::from_millis(config.replica_check_ms),
    };
    let primary_probe = pool_of(config, &config.url, 1)?;
    Ok(Some(Arc::new(replicas::Replicas::new(primary_probe, members, settings, metrics.clone()))))
}

/// One SQL statement with the types of its parameters, named for the query
/// duration metric. Declared as constants beside the handlers that run them.
pub struct Sql {
    pub name: &'static str,
    pub text: &'static str,
    pub types: &'static [Type],
}

/// The request pool with its statement mode. Cheap to clone.
///
/// Normally statements are prepared once per connection and cached. In
/// pgbouncer mode (transaction pooling, pgbouncer 1.18) a prepared statement
/// would live on a server connection the next transaction may not get, so
/// every statement is sent unnamed, with its types, in one round trip
/// (`query_typed`).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    unnamed: bool,
    timing: HistogramVec,
    replicas: Option<Arc<replicas::Replicas>>,
}

impl Db {
    pub fn new(pool: Pool, pgbouncer: bool, timing: HistogramVec) -> Self {
        Self { pool, unnamed: pgbouncer, timing, replicas: None }
    }

    /// Read-only requests' [`Db::read`] go to these replicas when they can.
    pub fn with_replicas(mut self, replicas: Option<Arc<replicas::Replicas>>) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn replicas(&self) -> Option<&Arc<replicas::Replicas>> {
        self.replicas.as_ref()
    }

    /// A connection for a read-only statement: a replica's that has replayed
    /// the request's read floor ([`READ_FLOOR`]) when one is in rotation,
    /// the primary's otherwise (and inside an idempotent request's
    /// transaction). A replica read that fails for the replica's sake runs
    /// again on the primary ([`Conn::rows`]).
    pub async fn read(&self) -> Result<Conn, PoolError> {
        if let Some(replicas) = &self.replicas
            && !in_request_transaction()
        {
            let floor = READ_FLOOR.try_with(|floor| *floor).ok().flatten();
            if let Some(on) = replicas.checkout(floor).await {
                let fallback = Some(Fallback { primary: self.clone(), index: on.index() });
                return Ok(Conn {
                    client: Arc::new(on.client),
                    in_transaction: false,
                    unnamed: false,
                    timing: self.timing.clone(),
                    fallback,
                });
            }
        }
        self.get().await
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection; waits at most the pool timeout.
    pub async fn get(&self) -> Result<Conn, PoolError> {
        if let Some(shared) = request_transaction() {
            return Ok(Conn::on_shared(shared));
        }
        Ok(self.conn(self.pool.get().await?))
    }

    /// A pooled connection for a caller with a deadline of its own: waits at
    /// most `wait` for a free one (none: only an idle one will do). Opening
    /// and recycling keep the pool's bounds.
    pub async fn get_within(&self, wait: Duration) -> Result<Conn, PoolError> {
        if let Some(shared) = request_transaction() {
            return Ok(Conn::on_shared(shared));
        }
        let timeouts = deadpool_postgres::Timeouts { wait: Some(wait), ..self.pool.timeouts() };
        Ok(self.conn(self.pool.timeout_get(&timeouts).await?))
    }

    /// Opens every connection of the pool at once and prepares each of
    /// [`ALL`] on it, before the first request: a new backend pays for its
    /// catalog caches on its first statements, and a proxy started into
    /// load paid that inside its first requests (at 4,000 req/s the first
    /// second's p99 was 131-157 ms without this, 94-118 ms with it).
    /// Each connection then runs [`WARM_UP`]: the post function and the list
    /// function once, writing nothing, so that PL/pgSQL has compiled the post
    /// function and its trigger and the extension is loaded before the first
    /// batch (a backend's first batch took 14-20 ms against 1-1.4 ms after,
    /// on an idle machine; 5 ms after the warm-up).
    /// Gives up at `within`; a
    /// database that does not answer is not waited for longer (requests
    /// open connections as they come, the watcher reports the outage).
    /// Returns how many connections were warmed.
    pub async fn warm(&self, within: Duration) -> usize {
        let timeouts = deadpool_postgres::Timeouts { wait: Some(within), create: Some(within), recycle: Some(within) };
        let size = self.pool.status().max_size;
        let warm_one = || async {
            let client = self.pool.timeout_get(&timeouts).await.ok()?;
            if !self.unnamed {
                for sql in ALL {
                    client.prepare_typed_cached(sql.text, sql.types).await.ok()?;
                }
            }
            // Best effort: a failure costs the first requests the warm-up,
            // not the connection, unless its transaction cannot be ended.
            if let Err(e) = client.batch_execute(WARM_UP).await {
                tracing::warn!(error = %e, "the warm-up statement failed");
                if client.batch_execute("ROLLBACK").await.is_err() {
                    drop(Object::take(client));
                    return None;
                }
            }
            // Held until every connection is open, so each is a new one.
            Some(client)
        };
        let warming = futures_util::future::join_all((0..size).map(|_| warm_one()));
        match tokio::time::timeout(within, warming).await {
            Ok(clients) => clients.iter().flatten().count(),
            Err(_) => 0,
        }
    }

    fn conn(&self, client: Object) -> Conn {
        Conn {
            client: Arc::new(client),
            in_transaction: false,
            unnamed: self.unnamed,
            timing: self.timing.clone(),
            fallback: None,
        }
    }
}

/// Runs the post function on a batch of two posts that it refuses (topic 0
/// does not exist; no rate-limit key, so nothing is counted) and one list
/// page, in a transaction rolled back: no row is written, no id drawn, no
/// event made. The function is compiled and its statements planned, the
/// statement trigger's too (it fires on the insert of no rows).
pub const WARM_UP: &str = "BEGIN;
SELECT count(*) FROM veritable.topic_page(NULL, NULL, 1);
SELECT count(*) FROM veritable.post_replies('{0,0}', '{NULL,NULL}', '{0,0}', '{\"\",\"\"}', '{NULL,NULL}', 1, true);
ROLLBACK;";

tokio::task_local! {
    /// The open transaction of the idempotent request being handled
    /// (`http::idempotency`): every `Db::get` inside its scope answers it.
    pub static REQUEST_TRANSACTION: Shared;
}

tokio::task_local! {
    /// The read floor of the request being handled: the newest write marker
    /// it carries or its session left in this proxy (`store::replicas`).
    pub static READ_FLOOR: Option<i64>;
}

fn request_transaction() -> Option<Shared> {
    REQUEST_TRANSACTION.try_with(Shared::clone).ok()
}

/// Whether the current task runs inside an idempotent request's transaction.
pub fn in_request_transaction() -> bool {
    REQUEST_TRANSACTION.try_with(|_| ()).is_ok()
}

/// A pooled connection several holders use in turn (an idempotent
/// request's transaction): it goes back to the pool when the last one drops.
#[derive(Clone)]
pub struct Shared {
    client: Arc<Object>,
    unnamed: bool,
    timing: HistogramVec,
}

/// A pooled connection that runs [`Sql`] statements and times them.
pub struct Conn {
    client: Arc<Object>,
    /// Whether it is an idempotent request's open transaction.
    in_transaction: bool,
    unnamed: bool,
    timing: HistogramVec,
    /// On a replica: where a failed read runs again.
    fallback: Option<Fallback>,
}

/// The replica a read runs on (its index among the `Db`'s replicas), and
/// the `Db` whose primary answers if the replica cannot.
struct Fallback {
    primary: Db,
    index: usize,
}

impl Conn {
    /// This connection, to be shared (see [`Shared`]).
    pub fn into_shared(self) -> Shared {
        Shared { client: self.client, unnamed: self.unnamed, timing: self.timing }
    }

    pub fn on_shared(shared: Shared) -> Self {
        Self {
            client: shared.client,
            in_transaction: true,
            unnamed: shared.unnamed,
            timing: shared.timing,
            fallback: None,
        }
    }

    /// Statements without parameters or results (`BEGIN`, `COMMIT`).
    pub async fn simple(&self, statements: &str) -> Result<(), tokio_postgres::Error> {
        settled(&self.client, self.client.batch_execute(statements).await).await
    }

    pub async fn rows(&self, sql: &Sql, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, tokio_postgres::Error> {
        let result = run(&self.client, self.unnamed, &self.timing, sql, params).await;
        let Some(fallback) = &self.fallback else { return result };
        match result {
            Err(error) if replicas::primary_can_answer(&error) => {
                if let Some(replicas) = fallback.primary.replicas() {
                    replicas.failed(fallback.index, &error);
                }
                tracing::debug!(statement = sql.name, %error, "a replica read runs again on the primary");
                match fallback.primary.pool.get().await {
                    Ok(primary) => run(&primary, fallback.primary.unnamed, &self.timing, sql, params).await,
                    Err(_) => Err(error),
                }
            }
            other => other,
        }
    }

    /// [`Conn::rows`], but a statement still running after `limit` is
    /// canceled in PostgreSQL (a cancel request, which works through
    /// pgbouncer too) and answers `Ok(None)`; the connection is returned
    /// only once the canceled statement has ended.
    pub async fn rows_within(
        &self,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
        limit: Duration,
    ) -> Result<Option<Vec<Row>>, tokio_postgres::Error> {
        let query = self.rows(sql, params);
        tokio::pin!(query);
        tokio::select! {
            rows = &mut query => return rows.map(Some),
            () = tokio::time::sleep(limit) => {}
        }
        if let Err(error) = self.client.cancel_token().cancel_query(NoTls).await {
            tracing::warn!(statement = sql.name, %error, "cannot cancel a statement past its time");
        }
        match query.await {
            Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The first row, if any.
    pub async fn opt(&self, sql: &Sql, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// [`Conn::opt`] for a write: a serialization failure (40001) or a
    /// deadlock (40P01) is retried up to three attempts in all, after 5–50 ms
    /// of jitter times the attempt number; other errors return at once.
    pub async fn write(&self, sql: &Sql, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.write_rows(sql, params).await?.into_iter().next())
    }

    /// [`Conn::write`], every row.
    pub async fn write_rows(
        &self,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        const ATTEMPTS: u64 = 3;
        let mut attempt = 1;
        // Inside a transaction the failure aborted it: only the whole
        // request can be tried again (it answers 503, its client retries).
        let attempts = if self.in_transaction { 1 } else { ATTEMPTS };
        loop {
            match self.rows(sql, params).await {
                Err(error) if retryable(&error) && attempt < attempts => {
                    let jitter = rand::Rng::random_range(&mut rand::rng(), 5..50) * attempt;
                    tracing::debug!(statement = sql.name, attempt, %error, "retrying a write");
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The first row of a statement that always returns one (an aggregate,
    /// a function call); none is an internal error.
    pub async fn one(&self, sql: &Sql, params: &[&(dyn ToSql + Sync)]) -> Result<Row, crate::AppError> {
        self.opt(sql, params)
            .await?
            .ok_or_else(|| crate::AppError::Internal(anyhow::anyhow!("{} returned no row", sql.name)))
    }
}

/// One statement on `client`, timed under its name: prepared once per
/// connection and cached, or sent unnamed with its types (pgbouncer mode).
async fn run(
    client: &Object,
    unnamed: bool,
    timing: &HistogramVec,
    sql: &Sql,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    debug_assert_eq!(params.len(), sql.types.len(), "{}: parameters and types differ", sql.name);
    let started = Instant::now();
    let result = if unnamed {
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = params.iter().copied().zip(sql.types.iter().cloned()).collect();
        client.query_typed(sql.text, &typed).await
    } else {
        match client.prepare_typed_cached(sql.text, sql.types).await {
            Ok(statement) => client.query(&statement, params).await,
            Err(error) => Err(error),
        }
    };
    timing.with_label_values(&[sql.name]).observe(started.elapsed().as_secs_f64());
    settled(client, result).await
}

/// `result`, after waiting, if its statement lost the connection (the
/// backend ended, the server went away), until the client has seen the
/// socket close, at most [`SETTLE_MAX`]: the error can arrive a moment
/// before the end of the stream, and the pool, which hands out the
/// connection used last, would otherwise give this one to the next request
/// before its check at checkout could see it closed. A connection that stays
/// open (pgbouncer keeps the client's when only the server's ended) is
/// returned as it is.
async fn settled<T>(client: &Object, result: Result<T, tokio_postgres::Error>) -> Result<T, tokio_postgres::Error> {
    if let Err(error) = &result
        && crate::http::error::connection_lost(error)
    {
        let deadline = Instant::now() + SETTLE_MAX;
        while !client.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    result
}

/// The longest [`settled`] waits.
const SETTLE_MAX: Duration = Duration::from_millis(100);

fn retryable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(error.code(), Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

/// How long one probe's outcome answers `/healthz`.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last probe: when it ran and whether the database answered. The
/// mutex also makes concurrent callers share one probe instead of each
/// taking a connection.
#[derive(Default)]
pub struct Probe {
    last: Mutex<Option<(Instant, bool)>>,
    /// Set on SIGTERM: `/healthz` answers 503 `draining` from then on.
    draining: std::sync::atomic::AtomicBool,
}

impl Probe {
    /// The proxy is shutting down: load balancers should stop sending to it.
    pub fn drain(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    pub async fn database_answers(&self, pool: &deadpool_postgres::Pool, probes: &prometheus::IntCounter) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, up)) = *last
            && at.elapsed() < FRESH_FOR
        {
            return up;
        }
        probes.inc();
        let was_up = last.map(|(_, up)| up);
        let up = match ping(pool).await {
            Ok(()) => true,
            Err(error) => {
                // Once per change, not once a second.
                if was_up != Some(false) {
                    tracing::warn!(%error, "health probe: database unavailable or pool busy");
                }
                false
            }
        };
        *last = Some((Instant::now(), up));
        up
    }
}

/// One round trip through the pool; the health check.
pub async fn ping(pool: &Pool) -> Result<(), PoolError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// A direct connection for `migrate` and `seed`. The connection task is owned
/// by the returned value and ends when it is dropped.
pub struct Direct {
    pub client: Client,
    task: JoinHandle<()>,
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn connect(config: &DbConfig) -> anyhow::Result<Direct> {
    let mut pg = config.url.clone();
    pg.connect_timeout(config.connect_timeout());
    let (client, connection) = pg
        .connect(NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL ({}): {e}", describe_target(&pg)))?;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "database connection ended");
        }
    });
    Ok(Direct { client, task })
}

/// host:port/dbname, without credentials, for error messages.
pub fn describe_target(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().or(pg.get_user()).unwrap_or("?");
    format!("{host}:{port}/{db}")
}

/// Whether the last probe reached the database; read by `/metrics`.
#[derive(Clone, Default)]
pub struct Reachability(Arc<AtomicBool>);

impl Reachability {
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A probe a second while the database answers, so an outage is noticed
/// (and logged, once) within about a second of its first failed request.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Probes the database until `cancel` fires: every second while it answers,
/// and with backoff (250 ms doubling to 1 s) while it does not. An outage is
/// one line when it starts (with its reason) and one when it ends; the
/// requests it fails answer 503 without a line each.
pub async fn watch(pool: Pool, target: String, state: Reachability, cancel: CancellationToken) {
    let mut backoff = BACKOFF_FIRST;
    let mut was_up: Option<bool> = None;
    loop {
        // Every connection busy past the pool wait is load, not an outage.
        let outcome = match ping(&pool).await {
            Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => Ok(()),
            outcome => outcome,
        };
        let delay = match &outcome {
            Ok(()) => {
                if was_up != Some(true) {
                    tracing::info!(database = %target, "database reachable");
                }
                backoff = BACKOFF_FIRST;
                PROBE_EVERY
            }
            Err(error) => {
                if was_up != Some(false) {
                    tracing::warn!(database = %target, error = %error, retry_in_ms = backoff.as_millis() as u64,
                        "database unreachable; requests needing it get 503 until it answers");
                } else {
                    tracing::debug!(database = %target, error = %error, "database still unreachable");
                }
                let delay = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                delay
            }
        };
        was_up = Some(outcome.is_ok());
        state.0.store(outcome.is_ok(), Ordering::Relaxed);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
