//! Shared helpers for the integration tests. They run against the private
//! cluster that `cargo xtask test` starts and prepares (database
//! `veritable_test`, migrated, with `small` seed data), and start the real
//! proxy on `127.0.0.1:0`.

pub mod metrics;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};
use veritable_proxy::config::{DbConfig, ServeConfig};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `cargo xtask test`, which starts the private cluster")
    })
}

/// The migrated, seeded test database.
pub fn database_url() -> String {
    env("VERITABLE_TEST_DATABASE_URL")
}

/// The debug `veritable-proxy` binary, for process-level tests.
pub fn proxy_bin() -> String {
    env("VERITABLE_PROXY_BIN")
}

/// Connects directly (no pool); the connection task ends with the test's runtime.
pub async fn connect(url: &str) -> Client {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.expect("the test database accepts connections");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// An empty database of its own for a test that needs one, dropped by [`FreshDb::drop_db`].
pub struct FreshDb {
    pub name: String,
    pub url: String,
}

impl FreshDb {
    /// Creates database `vt_{name}` (dropping a leftover from an earlier run first).
    pub async fn create(name: &str) -> Self {
        let admin = connect(&env("VERITABLE_TEST_CREATEDB_URL")).await;
        let name = format!("vt_{name}");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop leftover");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("the test role may create databases");
        let base = database_url();
        let url = match base.rsplit_once('/') {
            Some((prefix, _)) => format!("{prefix}/{name}"),
            None => panic!("VERITABLE_TEST_DATABASE_URL has no database name: {base}"),
        };
        Self { name, url }
    }

    /// A fresh database with every migration applied.
    pub async fn migrated(name: &str) -> (Self, Client) {
        let db = Self::create(name).await;
        let mut client = connect(&db.url).await;
        veritable_proxy::store::migrate::all(&mut client).await.expect("migrate");
        (db, client)
    }

    /// A fresh, migrated database loaded with `shape` (RNG seed `rng_seed`).
    pub async fn seeded(name: &str, shape: &veritable_proxy::seed::Shape, rng_seed: u64) -> (Self, Client) {
        let (db, mut client) = Self::migrated(name).await;
        veritable_proxy::seed::seed(&mut client, shape, rng_seed, false, false).await.expect("seed");
        (db, client)
    }

    pub async fn drop_db(self) {
        let admin = connect(&env("VERITABLE_TEST_CREATEDB_URL")).await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await
            .expect("drop database");
    }
}

/// The real proxy, serving on an ephemeral port until stopped.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(serve_config(database_url)).await
    }

    pub async fn start_with(config: ServeConfig) -> Self {
        // The proxy's own listening socket (its accept backlog), on an ephemeral port.
        let listener = veritable_proxy::server::listen(([127, 0, 0, 1], 0).into()).expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(veritable_proxy::server::run(listener, config, async move {
            let _ = rx.await;
        }));
        Self { addr, shutdown: Some(tx), task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers graceful shutdown and waits (at most 10 s) for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task).await??
    }
}

/// The test configuration of a proxy for `database_url`. When the pgbouncer
/// suite runs (`VERITABLE_TEST_PGBOUNCER_PORT` set by `cargo xtask test`), the
/// proxy reaches the same database through pgbouncer, in pgbouncer mode.
pub fn serve_config(database_url: &str) -> ServeConfig {
    let pgbouncer = std::env::var("VERITABLE_TEST_PGBOUNCER_PORT").ok();
    let url = match &pgbouncer {
        Some(port) => {
            let (prefix, name) = database_url.rsplit_once('/').expect("a URL with a database name");
            let (host, _) = prefix.rsplit_once(':').expect("a URL with a port");
            format!("{host}:{port}/{name}")
        }
        None => database_url.to_owned(),
    };
    let mut db = DbConfig::from_url(&url).expect("a valid database URL");
    db.pgbouncer = pgbouncer.is_some();
    let mut config = ServeConfig::for_tests(db);
    // The suites register and write far more from 127.0.0.1 than a person
    // would; the limits themselves have their own tests.
    config.registrations_per_hour = 100_000;
    config.writes_per_minute = 100_000;
    // LISTEN needs a direct connection, pgbouncer or not.
    config.listen_url = Some(database_url.parse().expect("a valid database URL"));
    config
}

/// A JSON API client for one server, signed in or not.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(server: &TestServer) -> Self {
        Self { base: server.url(""), http: reqwest::Client::new(), token: None }
    }

    /// Signs in as a seeded user (password `veritable-demo`).
    pub async fn signed_in(server: &TestServer, username: &str) -> Self {
        let mut api = Self::new(server);
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(serde_json::json!({
                    "username": username, "password": veritable_proxy::seed::DEMO_PASSWORD
                })),
            )
            .await;
        assert_eq!(status, 200, "login as {username}: {body}");
        api.token = Some(body["token"].as_str().expect("a token").to_owned());
        api
    }

    /// The same client with this token (or none).
    #[must_use]
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self { token: token.map(str::to_owned), ..self.clone() }
    }

    /// Sends one request; the status, the response headers and the JSON body
    /// (`null` when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, headers, json)
    }

    /// Sends one request; the status and the JSON body (`null` when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let (status, _, json) = self.send(method, path, body).await;
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call("GET", path, None).await
    }
}

/// Awaits a condition that other tasks or processes make true: `check` is
/// asked every 25 ms for at most 10 s; past that the test fails with `what`.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A local port that nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
    listener.local_addr().expect("bound").port()
}

/// The SQLSTATE of a failed statement, or a panic naming what succeeded.
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code().map(|c| c.code().to_owned()).unwrap_or_else(|| panic!("no SQLSTATE: {error}")),
    }
}
