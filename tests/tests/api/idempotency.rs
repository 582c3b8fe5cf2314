//! `Idempotency-Key`: a retried write is answered from its first answer
//! without writing again, on any proxy; another request with the same key is
//! refused; a refused write remembers nothing; keys are per user and last 24 h.

use serde_json::{Value, json};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{Api, FreshDb, TestServer};

async fn keyed(api: &Api, method: &str, path: &str, body: Option<Value>, key: &str) -> (u16, bool, Value) {
    let (status, headers, json) = api.send_with(method, path, body, &[("Idempotency-Key", key)]).await;
    (status, headers.get("idempotent-replayed").is_some_and(|v| v == "true"), json)
}

async fn count(client: &tokio_postgres::Client, sql: &str, text: &str) -> i64 {
    client.query_one(sql, &[&text]).await.expect("count").get(0)
}

const REPLIES_WITH: &str = "SELECT count(*) FROM forum_replies WHERE body = $1";
const TOPICS_TITLED: &str = "SELECT count(*) FROM forum_topics WHERE title = $1";

#[tokio::test]
async fn a_retried_write_is_answered_once_on_any_proxy() {
    let (db, client) = FreshDb::seeded("api_idempotency", &Shape::of(Scale::Small), 31).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 1000;
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let demo = Api::signed_in(&a, "demo").await;
    let demo_on_b = Api::new(&b).with_token(demo.token.as_deref());

    // A topic: the retry on the other proxy gets the first answer, and one topic exists.
    let topic = json!({ "category_id": 1, "title": "Idempotent topic", "body": "once" });
    let (status, replayed, first) = keyed(&demo, "POST", "/api/v1/forums/topics", Some(topic.clone()), "topic-1").await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, replayed, again) = keyed(&demo_on_b, "POST", "/api/v1/forums/topics", Some(topic), "topic-1").await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(count(&client, TOPICS_TITLED, "Idempotent topic").await, 1);
    let topic_id = first["id"].as_i64().expect("an id");

    // A reply (posts with a key are written in the request's own transaction).
    let path = format!("/api/v1/forums/topics/{topic_id}/replies");
    let reply = json!({ "body": "a keyed reply" });
    let (status, replayed, first) = keyed(&demo, "POST", &path, Some(reply.clone()), "reply-1").await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, replayed, again) = keyed(&demo_on_b, "POST", &path, Some(reply.clone()), "reply-1").await;
    assert_eq!((status, replayed, &again), (201, true, &first));
    assert_eq!(count(&client, REPLIES_WITH, "a keyed reply").await, 1);

    // The same key with another request: 422, nothing written.
    let (status, _, refused) = keyed(&demo, "POST", &path, Some(json!({ "body": "another" })), "reply-1").await;
    assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("Idempotency-Key")), "{refused}");
    assert_eq!(count(&client, REPLIES_WITH, "another").await, 0);

    // Keys are per user: another user's "reply-1" is a new request.
    let moderator = Api::signed_in(&a, "moderator").await;
    let (status, replayed, _) = keyed(&moderator, "POST", &path, Some(reply), "reply-1").await;
    assert_eq!((status, replayed), (201, false));
    assert_eq!(count(&client, REPLIES_WITH, "a keyed reply").await, 2);

    // A malformed key is refused before anything runs.
    let (status, _, bad) = keyed(&demo, "POST", &path, Some(json!({ "body": "x" })), "has space").await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("Idempotency-Key")), "{bad}");

    // An edit and a delete replay too (the delete's 204 has no body).
    let reply_id = first["id"].as_i64().expect("an id");
    let edit = json!({ "body": "edited once" });
    let edit_path = format!("/api/v1/forums/replies/{reply_id}");
    let (status, _, edited) = keyed(&demo, "PATCH", &edit_path, Some(edit.clone()), "edit-1").await;
    assert_eq!(status, 200, "{edited}");
    let (status, replayed, again) = keyed(&demo_on_b, "PATCH", &edit_path, Some(edit), "edit-1").await;
    assert_eq!((status, replayed, again), (200, true, edited));
    for replay in [false, true] {
        let (status, replayed, body) = keyed(&demo, "DELETE", &edit_path, None, "delete-1").await;
        assert_eq!((status, replayed, body), (204, replay, Value::Null));
    }

    // 24 hours later the key is free again: the same request writes again.
    let (status, _, _) = keyed(&demo, "POST", &path, Some(json!({ "body": "kept a day" })), "day-1").await;
    assert_eq!(status, 201);
    client
        .execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'day-1'", &[])
        .await
        .expect("age the key");
    let (status, replayed, _) = keyed(&demo, "POST", &path, Some(json!({ "body": "kept a day" })), "day-1").await;
    assert_eq!((status, replayed), (201, false));
    assert_eq!(count(&client, REPLIES_WITH, "kept a day").await, 2);
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}

#[tokio::test]
async fn refusals_are_not_remembered_and_concurrent_retries_write_once() {
    let (db, client) = FreshDb::seeded("api_idempotency_refused", &Shape::of(Scale::Small), 32).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 1000;
    let server = TestServer::start_with(config).await;
    let demo = Api::signed_in(&server, "demo").await;
    client.execute("UPDATE forum_topics SET is_locked = true WHERE id = 12", &[]).await.expect("lock");
    let path = "/api/v1/forums/topics/12/replies";
    let reply = json!({ "body": "after the unlock" });

    // Refused (a locked topic): nothing is stored, so the retry is judged afresh.
    let (status, _, _) = keyed(&demo, "POST", path, Some(reply.clone()), "locked-1").await;
    assert_eq!(status, 409);
    client.execute("UPDATE forum_topics SET is_locked = false WHERE id = 12", &[]).await.expect("unlock");
    let (status, replayed, _) = keyed(&demo, "POST", path, Some(reply), "locked-1").await;
    assert_eq!((status, replayed), (201, false));
    assert_eq!(count(&client, REPLIES_WITH, "after the unlock").await, 1);

    // Eight copies at once: one write, and every answer is that write's.
    let copies = (0..8).map(|_| {
        let demo = demo.clone();
        tokio::spawn(async move {
            keyed(&demo, "POST", "/api/v1/forums/topics/12/replies", Some(json!({ "body": "eight at once" })), "burst")
                .await
        })
    });
    let answers: Vec<(u16, bool, Value)> =
        futures_util::future::join_all(copies).await.into_iter().map(|r| r.expect("a task")).collect();
    let written: Vec<&Value> = answers.iter().filter(|(s, ..)| *s == 201).map(|(.., body)| body).collect();
    assert_eq!(written.len(), 8, "{answers:?}");
    assert!(written.iter().all(|body| body["id"] == written[0]["id"]), "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1, "{answers:?}");
    assert_eq!(count(&client, REPLIES_WITH, "eight at once").await, 1);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A key whose first request is still running: a second request with it
/// waits for the first, 2 s at most, then is answered 409 without writing
/// (the first then finishes and its answer is what a later retry gets); a
/// keyed body over the size limit is 413 and leaves no key behind.
#[tokio::test]
async fn a_key_still_in_use_is_409_after_two_seconds_and_oversize_is_413() {
    let (db, client) = FreshDb::seeded("api_idempotency_in_use", &Shape::of(Scale::Small), 33).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 1000;
    let server = TestServer::start_with(config).await;
    let demo = Api::signed_in(&server, "demo").await;
    let path = "/api/v1/forums/topics/12/replies";
    let reply = json!({ "body": "held while its key is in use" });

    // The first request waits for the topic, which another transaction holds.
    let mut blocker = veritable_tests::connect(&db.url).await;
    let lock = blocker.transaction().await.expect("begin");
    lock.execute("SELECT 1 FROM forum_topics WHERE id = 12 FOR UPDATE", &[]).await.expect("lock the topic");
    let first = {
        let (demo, reply) = (demo.clone(), reply.clone());
        tokio::spawn(async move { keyed(&demo, "POST", path, Some(reply), "in-use").await })
    };
    veritable_tests::until("the first keyed post waits for the topic", || {
        veritable_tests::db::posts_waiting_for_a_lock(&client, 1)
    })
    .await;
    let (status, _, busy) = keyed(&demo, "POST", path, Some(reply.clone()), "in-use").await;
    assert_eq!((status, busy["error"]["field"].as_str()), (409, Some("Idempotency-Key")), "{busy}");
    lock.rollback().await.expect("release");
    let (status, replayed, written) = first.await.expect("task");
    assert_eq!((status, replayed), (201, false), "{written}");
    let (status, replayed, again) = keyed(&demo, "POST", path, Some(reply), "in-use").await;
    assert_eq!((status, replayed, &again), (201, true, &written));
    assert_eq!(count(&client, REPLIES_WITH, "held while its key is in use").await, 1);

    // Over the body limit (256 KiB): 413 before anything is claimed.
    let big = json!({ "body": "x".repeat(300 * 1024) });
    let (status, _, refused) = keyed(&demo, "POST", path, Some(big), "too-big").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (413, Some("payload_too_large")), "{refused}");
    let keys: i64 = count(&client, "SELECT count(*) FROM idempotency_keys WHERE key = $1", "too-big").await;
    assert_eq!(keys, 0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// The browser's write helper (`client/veritable-api.js`, run by Node): it
/// sends a key, and sending the same write with that key again is answered
/// from the first without a second reply.
#[tokio::test]
async fn the_js_client_sends_a_key_with_every_write() {
    let (db, client) = FreshDb::seeded("api_idempotency_js", &Shape::of(Scale::Small), 33).await;
    let server = TestServer::start_with(veritable_tests::serve_config(&db.url)).await;
    let demo = Api::signed_in(&server, "demo").await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/write.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(server.url(""))
        .arg(demo.token.as_deref().expect("a token"))
        .arg("7")
        .output()
        .await
        .expect("node (Node.js >= 20) runs the client; `cargo xtask test` installs it");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!((answers[0]["status"].as_i64(), answers[0]["replayed"].as_bool()), (Some(201), Some(false)));
    assert_eq!((answers[1]["status"].as_i64(), answers[1]["replayed"].as_bool()), (Some(201), Some(true)));
    assert_eq!(answers[0]["data"], answers[1]["data"]);
    assert_eq!(answers[0]["key"].as_str().map(str::len), Some(36), "a UUID: {answers:?}");
    assert_eq!(count(&client, REPLIES_WITH, "written once by the JS client").await, 1);
    server.stop().await.expect("stop");
    db.drop_db().await;
}
