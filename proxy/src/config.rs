//! The proxy's configuration: one typed struct per command, read once in
//! `main` from flags and environment variables, then passed down.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "veritable-proxy", version, about = "veritable's HTTP and WebSocket proxy")]
pub struct Cli {
    /// Log line format.
    #[arg(long, env = "VERITABLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start and matched once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeConfig),
    /// Apply the SQL migrations in `sql/` that the database has not seen yet.
    Migrate(MigrateArgs),
    /// Load deterministic demo data with COPY.
    Seed(SeedArgs),
    /// Print a statement the proxy runs (`store::ALL`), its `$n` parameters
    /// replaced by the given expressions: how the benchmark scripts hand
    /// pgbench the very SQL the proxy runs. Without a name, lists them all.
    Statement(StatementArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StatementArgs {
    /// The statement's name (`topic_page`, `reply_create`, ...).
    pub name: Option<String>,
    /// `N=EXPR`: put EXPR (e.g. a pgbench `:variable`) in place of `$N`.
    #[arg(value_parser = parse_substitution)]
    pub substitutions: Vec<(usize, String)>,
}

fn parse_substitution(arg: &str) -> Result<(usize, String), String> {
    let (n, expr) = arg.split_once('=').ok_or_else(|| format!("`{arg}` is not N=EXPR"))?;
    let n: usize = n.trim_start_matches('$').parse().map_err(|_| format!("`{n}` is not a parameter number"))?;
    Ok((n, expr.to_owned()))
}

/// How to reach PostgreSQL, and how hard to lean on it.
#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// PostgreSQL connection string (`postgres://user@host:port/db` or key=value form).
    #[arg(long = "database-url", env = "DATABASE_URL", value_parser = parse_pg_config)]
    pub url: tokio_postgres::Config,
    /// Most connections the pool holds.
    #[arg(long, env = "VERITABLE_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool_size: u16,
    /// How long a request waits for a pooled connection before it gets 503.
    /// Short, so that under overload the answers that are admitted stay fast
    /// and the rest are told to come back (the load tool's ramp measures it).
    #[arg(long, env = "VERITABLE_POOL_TIMEOUT_MS", default_value_t = 100)]
    pub pool_timeout_ms: u64,
    /// How long opening one connection may take.
    #[arg(long, env = "VERITABLE_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    pub connect_timeout_ms: u64,
    /// `DATABASE_URL` is a pgbouncer in transaction mode: send every statement
    /// unnamed (no prepared statements survive between transactions there).
    #[arg(long, env = "VERITABLE_PGBOUNCER", default_value_t = false)]
    pub pgbouncer: bool,
    /// Streaming replicas for read-only requests (comma-separated
    /// connection strings, one server each); empty: every read on the primary.
    #[arg(long = "replica-urls", env = "VERITABLE_REPLICA_URLS", value_delimiter = ',', value_parser = parse_pg_config)]
    pub replica_urls: Vec<tokio_postgres::Config>,
    /// A replica further behind the primary than this is out of rotation.
    #[arg(long, env = "VERITABLE_REPLICA_MAX_LAG_MS", default_value_t = 1000)]
    pub replica_max_lag_ms: u64,
    /// How often the primary's WAL position is sampled and the replicas checked.
    #[arg(long, env = "VERITABLE_REPLICA_CHECK_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub replica_check_ms: u64,
}

impl DbConfig {
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// A config for tests and tools: defaults for everything but the URL.
    pub fn from_url(url: &str) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            url: url.parse()?,
            pool_size: 16,
            pool_timeout_ms: 100,
            connect_timeout_ms: 5000,
            pgbouncer: false,
            replica_urls: Vec::new(),
            replica_max_lag_ms: 1000,
            replica_check_ms: 100,
        })
    }
}

fn parse_pg_config(s: &str) -> Result<tokio_postgres::Config, String> {
    s.parse().map_err(|e| format!("not a PostgreSQL connection string: {e}"))
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "VERITABLE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub db: DbConfig,
    /// Longest time one HTTP request may take before it is answered 503.
    #[arg(long, env = "VERITABLE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Largest request body; larger ones get 413.
    #[arg(long, env = "VERITABLE_BODY_LIMIT_BYTES", default_value_t = 256 * 1024)]
    pub body_limit_bytes: usize,
    /// Bytes of hot session records the cache may hold.
    #[arg(long, env = "VERITABLE_SESSION_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub session_cache_bytes: u64,
    /// Mark the session cookie Secure (set when serving behind TLS).
    #[arg(long, env = "VERITABLE_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,
    /// Password hashes computed at once (default: the number of cores).
    #[arg(long, env = "VERITABLE_HASH_THREADS")]
    pub hash_threads: Option<usize>,
    /// How long a login waits for a hashing thread before it gets 503 `busy`
    /// (apart from the pool's wait: a burst of logins queues for argon2 longer
    /// than a query should queue for a connection).
    #[arg(long, env = "VERITABLE_HASH_WAIT_MS", default_value_t = 2000)]
    pub hash_wait_ms: u64,
    /// Login attempts per client address per minute.
    #[arg(long, env = "VERITABLE_LOGIN_PER_IP", default_value_t = 30)]
    pub login_per_ip: i32,
    /// Login attempts per account and client address per minute (a bucket
    /// per pair, so nobody can lock an account out from elsewhere).
    #[arg(long, env = "VERITABLE_LOGIN_PER_ACCOUNT", default_value_t = 10)]
    pub login_per_account: i32,
    /// Topics and replies one user may post per minute.
    #[arg(long, env = "VERITABLE_POSTS_PER_MINUTE", default_value_t = 20)]
    pub posts_per_minute: i32,
    /// Other writes (edits, deletes, wiki saves, marking read, preferences)
    /// one user may make per minute.
    #[arg(long, env = "VERITABLE_WRITES_PER_MINUTE", default_value_t = 60)]
    pub writes_per_minute: i32,
    /// HTTP connections open at once; a new one past this is answered 503
    /// and closed (WebSockets, once upgraded, count against their own limits).
    #[arg(long, env = "VERITABLE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request head, and may sit
    /// idle between requests, before it is closed.
    #[arg(long, env = "VERITABLE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Searches running at once in this proxy; more are answered 503 at once.
    #[arg(long, env = "VERITABLE_SEARCH_CONCURRENCY", default_value_t = 4)]
    pub search_concurrency: usize,
    /// Markdown previews rendering at once in this proxy; more are answered
    /// 503 at once (0 turns previews off).
    #[arg(long, env = "VERITABLE_PREVIEW_CONCURRENCY", default_value_t = 2)]
    pub preview_concurrency: usize,
    /// Milliseconds a search may run in PostgreSQL before it is canceled (422).
    #[arg(long, env = "VERITABLE_SEARCH_TIMEOUT_MS", default_value_t = 500)]
    pub search_timeout_ms: u64,
    /// Registrations per client address per hour.
    #[arg(long, env = "VERITABLE_REGISTRATIONS_PER_HOUR", default_value_t = 20)]
    pub registrations_per_hour: i32,
    /// Requests handled at once; more are answered 503 with Retry-After at
    /// once instead of queueing (health and metrics are exempt).
    #[arg(long, env = "VERITABLE_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// How long a session's hot record is trusted without asking PostgreSQL
    /// (revocations and role changes also reach every proxy as events).
    #[arg(long, env = "VERITABLE_SESSION_CACHE_MS", default_value_t = 1000)]
    pub session_cache_ms: u64,
    /// How long past that a session's record is still served while one
    /// check in the background confirms it (so a stall of PostgreSQL does
    /// not make every signed-in request wait to re-check its session); a
    /// record not confirmed for this long is checked by the request itself.
    #[arg(long, env = "VERITABLE_SESSION_STALE_MS", default_value_t = 10_000)]
    pub session_stale_ms: u64,
    /// On SIGTERM, how long `/healthz` answers 503 `draining` while requests
    /// are still served, before the listener closes and in-flight requests
    /// finish: long enough for a load balancer's health checks to take the
    /// proxy out of rotation (HAProxy here: 2 failed checks 250 ms apart).
    #[arg(long, env = "VERITABLE_DRAIN_DELAY_MS", default_value_t = 1000)]
    pub drain_delay_ms: u64,
    /// Bytes of hot read responses (topic list pages, categories, first
    /// pages of reply trees, wiki pages) cached.
    #[arg(long, env = "VERITABLE_READ_CACHE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub read_cache_bytes: u64,
    /// How long a cached read response is served; 0 turns the cache off.
    #[arg(long, env = "VERITABLE_READ_CACHE_MS", default_value_t = 1000)]
    pub read_cache_ms: u64,
    /// How long a cached wiki page is served. Each page is dropped on every
    /// proxy by its own `wiki.*` event, so this bounds only a change that
    /// made no event (a DBA's UPDATE of `wiki_pages` by hand).
    #[arg(long, env = "VERITABLE_READ_CACHE_PAGE_MS", default_value_t = 30_000)]
    pub read_cache_page_ms: u64,
    /// Under a stream of changes, cached list pages and reply trees are
    /// dropped at most this often (so they trail a write by at most this
    /// much); 0 drops them on every change. A session's own reads of what
    /// its writes show in take only responses loaded after them, for this
    /// long plus a second (the write's event's way here) after each write.
    #[arg(long, env = "VERITABLE_READ_CACHE_REFRESH_MS", default_value_t = 250)]
    pub read_cache_refresh_ms: u64,
    /// The realtime listener's own connection (direct, not through pgbouncer);
    /// `DATABASE_URL` when unset.
    #[arg(long = "listen-url", env = "VERITABLE_LISTEN_URL", value_parser = parse_pg_config)]
    pub listen_url: Option<tokio_postgres::Config>,
    /// Origins besides the proxy's own host that may open WebSockets
    /// (comma-separated, like `https://forum.example`).
    #[arg(long, env = "VERITABLE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// WebSocket connections per signed-in user.
    #[arg(long, env = "VERITABLE_WS_PER_USER", default_value_t = 8)]
    pub ws_per_user: usize,
    /// WebSocket connections per client address.
    #[arg(long, env = "VERITABLE_WS_PER_IP", default_value_t = 256)]
    pub ws_per_ip: usize,
    /// Rooms one WebSocket may join.
    #[arg(long, env = "VERITABLE_WS_ROOMS", default_value_t = 50)]
    pub ws_rooms: usize,
    /// Seconds a user stays listed in a room after their proxy stopped refreshing it.
    #[arg(long, env = "VERITABLE_PRESENCE_TTL_SECS", default_value_t = 60)]
    pub presence_ttl_secs: u64,
    /// Events queued for one WebSocket before it is closed as too slow (1013).
    #[arg(long, env = "VERITABLE_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,
    /// Seconds between WebSocket pings; two unanswered close the connection.
    #[arg(long, env = "VERITABLE_WS_PING_SECS", default_value_t = 30)]
    pub ws_ping_secs: u64,
    /// Send presence and typing frames (who reads and writes where) to
    /// anonymous WebSockets too; by default only signed-in users see them.
    #[arg(long, env = "VERITABLE_WS_ANONYMOUS_PRESENCE")]
    pub ws_anonymous_presence: bool,
    /// Milliseconds between flushes of the batched topic view counts.
    #[arg(long, env = "VERITABLE_VIEW_FLUSH_MS", default_value_t = 2000)]
    pub view_flush_ms: u64,
    /// Reply posts sent to PostgreSQL at once, each statement a batch of
    /// the posts that waited (one pooled connection each). Two: concurrent
    /// batches of the same authors wait on each other's rate-limit rows, so
    /// four gained nothing and lengthened each statement (BENCHMARKS.md).
    #[arg(long, env = "VERITABLE_POST_BATCHES", default_value_t = 2)]
    pub post_batches: usize,
    /// Replies in one batch at most.
    #[arg(long, env = "VERITABLE_POST_BATCH_ROWS", default_value_t = 64)]
    pub post_batch_rows: usize,
    /// Replies in one batch at most while the post queue stands (has not
    /// emptied for `VERITABLE_POST_WAIT_MS`: overload). Shorter statements
    /// halved the ramp's admitted p99 past the knee and wrote more posts
    /// (BENCHMARKS.md, "Shorter batches while the queue stands").
    #[arg(long, env = "VERITABLE_POST_BATCH_ROWS_STANDING", default_value_t = 16)]
    pub post_batch_rows_standing: usize,
    /// Reply posts waiting for a batch at most; more are answered 503 at once.
    #[arg(long, env = "VERITABLE_POST_QUEUE", default_value_t = 1024)]
    pub post_queue: usize,
    /// Milliseconds a reply post may wait for its batch; past it the post is
    /// answered 503 unwritten. Longer than the pool's checkout wait: a
    /// post waits behind whole batches, and PostgreSQL's commits stall for
    /// 100-200 ms now and then on shared disks (the soak in BENCHMARKS.md).
    /// Under a standing queue (overload) a quarter of it (posting.rs).
    #[arg(long, env = "VERITABLE_POST_WAIT_MS", default_value_t = 200)]
    pub post_wait_ms: u64,
    /// Reply posts held out of their batch by a locked topic or parent that
    /// may wait for the lock at once (each alone, on its own connection, up
    /// to the role's lock_timeout); more are answered 503 `row_locked` at once.
    #[arg(long, env = "VERITABLE_POST_LOCK_WAITERS", default_value_t = 4)]
    pub post_lock_waiters: usize,
}

impl ServeConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn hash_parallelism(&self) -> usize {
        self.hash_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    /// How long a login waits for a hashing slot before 503.
    pub fn hash_wait(&self) -> Duration {
        Duration::from_millis(self.hash_wait_ms)
    }

    /// A config for tests: defaults for everything but the database.
    pub fn for_tests(db: DbConfig) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db,
            request_timeout_ms: 30_000,
            body_limit_bytes: 256 * 1024,
            session_cache_bytes: 8 * 1024 * 1024,
            cookie_secure: false,
            hash_threads: None,
            hash_wait_ms: 2000,
            login_per_ip: 30,
            login_per_account: 10,
            posts_per_minute: 20,
            writes_per_minute: 60,
            registrations_per_hour: 20,
            max_connections: 10_000,
            header_timeout_secs: 10,
            search_concurrency: 4,
            preview_concurrency: 2,
            search_timeout_ms: 500,
            max_in_flight: 4096,
            view_flush_ms: 2000,
            post_batches: 2,
            post_batch_rows: 64,
            post_batch_rows_standing: 16,
            post_queue: 1024,
            post_wait_ms: 200,
            post_lock_waiters: 4,
            read_cache_bytes: 16 * 1024 * 1024,
            read_cache_ms: 0,
            read_cache_page_ms: 30_000,
            read_cache_refresh_ms: 250,
            session_cache_ms: 1000,
            session_stale_ms: 10_000,
            drain_delay_ms: 0,
            listen_url: None,
            allowed_origins: Vec::new(),
            ws_per_user: 8,
            ws_per_ip: 256,
            ws_rooms: 50,
            ws_queue: 256,
            ws_ping_secs: 30,
            ws_anonymous_presence: false,
            presence_ttl_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// A few hundred topics: loads in seconds (used by `cargo xtask up` and tests).
    Small,
    /// A tenth of `default` (100k replies): the "10× less data" side of flatness checks.
    Medium,
    /// The seed report's shape: 10k users, 50k topics, 1M replies.
    Default,
    /// Ten times `default`'s replies, for data-size flatness checks.
    Large,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub db: DbConfig,
    /// How much data to load.
    #[arg(long, value_enum, default_value_t = Scale::Small)]
    pub scale: Scale,
    /// Empty the seeded tables first instead of refusing when they hold data.
    #[arg(long)]
    pub replace: bool,
    /// Do nothing (and succeed) when the database already holds users.
    #[arg(long, conflicts_with = "replace")]
    pub if_empty: bool,
    /// RNG seed; the same seed and scale always give the same data.
    #[arg(long, default_value_t = 0x7e51_7ab1e)]
    pub rng_seed: u64,
}
