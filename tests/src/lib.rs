//! Shared helpers for the integration tests. They run against the private
//! cluster that `cargo xtask test` starts and prepares (database
//! `veritable_test`, migrated, with `small` seed data), and start the real
//! proxy on `127.0.0.1:0`.

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
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("the test database accepts connections");
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
        veritable_proxy::migrate::apply(&mut client, veritable_proxy::migrate::MIGRATIONS).await.expect("migrate");
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
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.expect("drop database");
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
        let db = DbConfig::from_url(database_url).expect("a valid database URL");
        Self::start_with(ServeConfig::for_tests(db)).await
    }

    pub async fn start_with(config: ServeConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
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
