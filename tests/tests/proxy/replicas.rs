//! Reads from a streaming replica with read-your-writes (`store::replicas`),
//! against the replica `cargo xtask test` starts (a `pg_basebackup` of the
//! private cluster, following its WAL). These tests pause the replica's
//! replay, so they take turns.

use serde_json::json;
use tokio::sync::Mutex;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::metrics::{REPLICA_SERIES, eventually_metric, metric, named_in};
use veritable_tests::server::serve_config;
use veritable_tests::{Api, FreshDb, TestServer, connect, until};

static TURN: Mutex<()> = Mutex::const_new(());

/// A seeded database of the test's own on the primary, once the replica
/// has replayed it (the shared test database's counts are other tests').
async fn replicated(name: &str) -> (FreshDb, String) {
    let (db, _) = FreshDb::seeded(name, &Shape::of(Scale::Small), 41).await;
    let base =
        std::env::var("VERITABLE_TEST_REPLICA_URL").expect("VERITABLE_TEST_REPLICA_URL: run with `cargo xtask test`");
    let (prefix, _) = base.rsplit_once('/').expect("a replica URL with a database name");
    let replica = format!("{prefix}/{}", db.name);
    until("the replica has replayed the seeded database", || async {
        let Ok((client, connection)) = tokio_postgres::connect(&replica, tokio_postgres::NoTls).await else {
            return false;
        };
        tokio::spawn(connection);
        client.query_one("SELECT count(*) FROM users", &[]).await.is_ok_and(|row| row.get::<_, i64>(0) > 0)
    })
    .await;
    (db, replica)
}

/// A superuser connection to the replica, to pause and resume its replay.
struct Replay(tokio_postgres::Client);

impl Replay {
    async fn connect() -> Self {
        let admin = std::env::var("VERITABLE_TEST_REPLICA_ADMIN_URL")
            .expect("VERITABLE_TEST_REPLICA_ADMIN_URL: run with `cargo xtask test`");
        let replay = Self(connect(&admin).await);
        // A test that failed while replay was paused must not leave it so.
        replay.resume().await;
        replay
    }

    async fn state(&self) -> String {
        self.0.query_one("SELECT pg_get_wal_replay_pause_state()", &[]).await.expect("replay state").get(0)
    }

    async fn pause(&self) {
        self.0.batch_execute("SELECT pg_wal_replay_pause()").await.expect("pause replay");
        until("replay is paused", || async { self.state().await == "paused" }).await;
    }

    async fn resume(&self) {
        self.0.batch_execute("SELECT pg_wal_replay_resume()").await.expect("resume replay");
    }
}

/// A proxy on `db` reading from its copy on the replica, checking it every `check_ms`.
async fn proxy(db: &FreshDb, replica: &str, max_lag_ms: u64, check_ms: u64) -> TestServer {
    let mut config = serve_config(&db.url);
    config.db.replica_urls = vec![replica.parse().expect("a replica URL")];
    config.db.replica_max_lag_ms = max_lag_ms;
    config.db.replica_check_ms = check_ms;
    TestServer::start_with(config).await
}

fn in_rotation(replica: &str) -> String {
    let url: tokio_postgres::Config = replica.parse().expect("a replica URL");
    format!("veritable_replica_in_rotation{{replica=\"{}\"}}", veritable_proxy::store::describe_target(&url))
}

const REPLICA_READS: &str = "veritable_db_reads_total{target=\"replica\"}";
const PRIMARY_READS: &str = "veritable_db_reads_total{target=\"primary\"}";

/// Posts a topic as `writer`; its path and the write marker cookie of the answer.
async fn new_topic(writer: &Api) -> (String, String) {
    let (_, categories) = writer.get("/api/v1/forums/categories").await;
    let category = categories["items"][0]["id"].as_i64().expect("a seeded category");
    let (status, headers, topic) = writer
        .send(
            "POST",
            "/api/v1/forums/topics",
            Some(json!({ "category_id": category, "title": "Replicated?", "body": "Written on the primary." })),
        )
        .await;
    assert_eq!(status, 201, "{topic}");
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("veritable_wrote="))
        .and_then(|v| v.split(';').next())
        .expect("a write answers with its marker cookie")
        .to_owned();
    let id = topic["id"].as_i64().expect("a topic id");
    (format!("/api/v1/forums/topics/{id}"), cookie)
}

#[tokio::test]
async fn a_writer_reads_its_own_write_through_any_proxy_while_the_replica_has_not_replayed_it() {
    let _turn = TURN.lock().await;
    let replay = Replay::connect().await;
    let (db, replica) = replicated("replica_ryw").await;
    // A generous lag bound: the paused replica stays in rotation and serves
    // stale reads to everyone without a marker.
    let (a, b) = (proxy(&db, &replica, 60_000, 20).await, proxy(&db, &replica, 60_000, 20).await);
    eventually_metric(&a, &in_rotation(&replica), 1.0).await;
    eventually_metric(&b, &in_rotation(&replica), 1.0).await;
    let writer = Api::signed_in(&a, "demo").await;
    replay.pause().await;

    let (path, cookie) = new_topic(&writer).await;

    // Someone else, on B: the replica answers, without the topic.
    let before = metric(&b, REPLICA_READS).await;
    assert_eq!(Api::new(&b).get(&path).await.0, 404, "a reader without a marker reads the paused replica");
    assert_eq!(metric(&b, REPLICA_READS).await, before + 1.0);

    // The writer: on A by its session, on B by the cookie its browser carries.
    let primary_before = metric(&a, PRIMARY_READS).await;
    assert_eq!(writer.get(&path).await.0, 200, "the writer sees its topic on the proxy it wrote through");
    assert_eq!(metric(&a, PRIMARY_READS).await, primary_before + 1.0);
    let carried = Api::new(&b).send_with("GET", &path, None, &[("cookie", &cookie)]).await;
    assert_eq!(carried.0, 200, "the writer sees its topic on another proxy: {}", carried.2);

    // Once the replica has replayed it, the writer's reads go there again.
    replay.resume().await;
    until("B reads the writer's topic from the replica", || async {
        let before = metric(&b, REPLICA_READS).await;
        let (status, _, _) = Api::new(&b).send_with("GET", &path, None, &[("cookie", &cookie)]).await;
        status == 200 && metric(&b, REPLICA_READS).await == before + 1.0
    })
    .await;
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    db.drop_db().await;
}

#[tokio::test]
async fn a_lagging_replica_leaves_rotation_and_returns_once_it_catches_up() {
    let _turn = TURN.lock().await;
    let replay = Replay::connect().await;
    let (db, replica) = replicated("replica_lag").await;
    let server = proxy(&db, &replica, 300, 20).await;
    eventually_metric(&server, &in_rotation(&replica), 1.0).await;
    let writer = Api::signed_in(&server, "demo").await;

    // Crafted markers: one no sample will reach sends its reader's reads to
    // the primary (its own reads only); one that is not a number is ignored.
    let (_, topics) = writer.get("/api/v1/forums/topics").await;
    let some = format!("/api/v1/forums/topics/{}", topics["items"][0]["id"].as_i64().expect("a topic"));
    for (cookie, series) in
        [("veritable_wrote=9223372036854775807", PRIMARY_READS), ("veritable_wrote=1e9; x=y", REPLICA_READS)]
    {
        let before = metric(&server, series).await;
        let (status, _, _) = Api::new(&server).send_with("GET", &some, None, &[("cookie", cookie)]).await;
        assert_eq!(status, 200, "{cookie}");
        assert_eq!(metric(&server, series).await, before + 1.0, "{cookie} read from {series}");
    }
    replay.pause().await;
    // WAL the replica does not replay: it falls behind by the clock.
    let (path, _) = new_topic(&writer).await;
    eventually_metric(&server, &in_rotation(&replica), 0.0).await;
    let lag_name = in_rotation(&replica).replace("in_rotation", "lag_seconds");
    assert!(metric(&server, &lag_name).await >= 0.3, "the lag metric shows the lag");
    // The per-replica series the shipped alerts and dashboard use are exported.
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/prometheus/alerts.yml"))
        .expect("alerts.yml")
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/grafana/veritable.json"))
            .expect("the dashboard");
    for series in REPLICA_SERIES {
        assert!(named_in(&shipped).contains(series), "{series} is not used by the alerts or the dashboard");
        assert!(text.contains(&format!("\n{series}{{replica=")), "{series} is not exported");
    }

    // Out of rotation: everyone reads the primary, which has the topic.
    let before = metric(&server, PRIMARY_READS).await;
    assert_eq!(Api::new(&server).get(&path).await.0, 200);
    assert_eq!(metric(&server, PRIMARY_READS).await, before + 1.0);

    replay.resume().await;
    eventually_metric(&server, &in_rotation(&replica), 1.0).await;
    let before = metric(&server, REPLICA_READS).await;
    assert_eq!(Api::new(&server).get(&path).await.0, 200, "the caught-up replica has the topic");
    assert_eq!(metric(&server, REPLICA_READS).await, before + 1.0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}
