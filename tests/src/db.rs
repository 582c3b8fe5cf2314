//! The private cluster's databases: the shared test database, fresh ones
//! for a test of its own, direct connections, SQLSTATEs.

use tokio_postgres::{Client, NoTls};

pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `cargo xtask test`, which starts the private cluster")
    })
}

/// The migrated, seeded test database.
pub fn database_url() -> String {
    env("VERITABLE_TEST_DATABASE_URL")
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
        drop_database(&admin, &name).await;
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
        drop_database(&admin, &self.name).await;
    }
}

/// Drops database `name` and whoever is connected to it. The test role may
/// end only its own sessions: for a few seconds after a start, autoprewarm's
/// worker (a superuser's process) reads each database it had buffers of,
/// and the drop is refused with 42501 until it is done, so that is waited out.
async fn drop_database(admin: &Client, name: &str) {
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    crate::wait::until(&format!("database {name} dropped"), || async {
        match admin.batch_execute(&drop).await {
            Ok(()) => true,
            Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => false,
            Err(error) => panic!("drop database {name}: {error}"),
        }
    })
    .await;
}

/// The reply count PostgreSQL holds for `topic` (its stats row).
pub async fn stored_reply_count(client: &Client, topic: i64) -> i64 {
    let count: i32 = client
        .query_one("SELECT reply_count FROM forum_topic_stats WHERE topic_id = $1", &[&topic])
        .await
        .expect("the topic's stats row")
        .get(0);
    i64::from(count)
}

/// The SQLSTATE of a failed statement, or a panic naming what succeeded.
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code().map(|c| c.code().to_owned()).unwrap_or_else(|| panic!("no SQLSTATE: {error}")),
    }
}

/// Whether exactly `n` reply statements of `client`'s database wait for a
/// lock (tests of other databases, running at the same time, hold posts
/// behind locks of their own).
pub async fn posts_waiting_for_a_lock(client: &tokio_postgres::Client, n: i64) -> bool {
    let waiting: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND wait_event_type = 'Lock' AND query LIKE '%post_replies%'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    waiting == n
}
