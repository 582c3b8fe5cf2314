//! The real proxy: in-process on an ephemeral port, or its binary.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use veritable_proxy::config::{DbConfig, ServeConfig};

use crate::db::env;

/// The debug `veritable-proxy` binary, for process-level tests.
pub fn proxy_bin() -> String {
    env("VERITABLE_PROXY_BIN")
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

/// A local port that nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
    listener.local_addr().expect("bound").port()
}
