//! Posting replies over real HTTP, on a database of its own.

use serde_json::{Value, json};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::db::{posts_waiting_for_a_lock, stored_reply_count};
use veritable_tests::{Api, FreshDb, TestServer};

async fn login(server: &TestServer, username: &str) -> String {
    Api::signed_in(server, username).await.token.expect("a token")
}

async fn post(server: &TestServer, topic: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let path = format!("/api/v1/forums/topics/{topic}/replies");
    Api::new(server).with_token(token).call("POST", &path, Some(body.clone())).await
}

#[tokio::test]
async fn posting_replies_stores_sanitized_html_and_refuses_what_it_must() {
    let (db, client) = FreshDb::seeded("api_replies", &Shape::of(Scale::Small), 5).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 1000;
    let server = TestServer::start_with(config).await;
    let token = login(&server, "demo").await;
    let topic = "10";
    let before = stored_reply_count(&client, 10).await;

    let (status, body) = post(&server, topic, None, &json!({ "body": "hi" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    let (status, created) =
        post(&server, topic, Some(&token), &json!({ "body": "**hi** <script>alert(1)</script>" })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["body_html"], "<p><strong>hi</strong> </p>\n");
    assert_eq!(created["depth"], 0);
    let parent = created["id"].as_i64().expect("id");
    let (status, child) = post(&server, topic, Some(&token), &json!({ "body": "answer", "parent_id": parent })).await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["depth"], 1);
    let after = stored_reply_count(&client, 10).await;
    assert_eq!(after, before + 2);

    let foreign: i64 =
        client.query_one("SELECT id FROM forum_replies WHERE topic_id <> 10 LIMIT 1", &[]).await.expect("q").get(0);
    for (body, status, field) in [
        (json!({ "body": "x", "parent_id": foreign }), 422, "parent_id"),
        (json!({ "body": "   " }), 422, "body"),
        (json!({ "body": "x".repeat(100_001) }), 422, "body"),
        (json!({ "body": format!("{}x", "> ".repeat(300)) }), 422, "body"),
        (json!({ "text": "x" }), 422, "body"),
    ] {
        let (got, answer) = post(&server, topic, Some(&token), &body).await;
        assert_eq!(got, status, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, _) = post(&server, "999999", Some(&token), &json!({ "body": "x" })).await;
    assert_eq!(status, 404);
    client.execute("UPDATE forum_topics SET is_locked = true WHERE id = 11", &[]).await.expect("lock");
    let (status, answer) = post(&server, "11", Some(&token), &json!({ "body": "x" })).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("conflict")));

    // Many writers on one topic at once: all succeed, counters stay exact.
    let posts = (0..24).map(|i| {
        let url = server.url("/api/v1/forums/topics/12/replies");
        let token = token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "body": format!("concurrent {i} @admin") }))
                .send()
                .await
        })
    });
    for post in posts.collect::<Vec<_>>() {
        let response = post.await.expect("task").expect("request");
        assert_eq!(response.status(), 201);
    }
    let drift: i64 = client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("q").get(0);
    assert_eq!(drift, 0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Posts that wait while a batch runs leave together as one statement, and
/// each gets its own answer: a locked or missing topic, a foreign parent and
/// a rate-limited author never fail a neighbour; a body the sanitizer refuses
/// fails the statement, which is then posted again one reply at a time, so
/// only that post gets the error.
#[tokio::test]
async fn posts_gathered_into_one_batch_each_get_their_own_answer() {
    let (db, client) = FreshDb::seeded("api_reply_batches", &Shape::of(Scale::Small), 6).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 3;
    config.post_batches = 1;
    // Posts wait behind the lock as long as the test needs (the wait bound has its own test).
    config.post_wait_ms = 30_000;
    let server = TestServer::start_with(config).await;
    let demo = login(&server, "demo").await;
    let admin = login(&server, "admin").await;
    let moderator = login(&server, "moderator").await;
    client.execute("UPDATE forum_topics SET is_locked = true WHERE id = 11", &[]).await.expect("lock");
    let foreign: i64 =
        client.query_one("SELECT id FROM forum_replies WHERE topic_id <> 10 LIMIT 1", &[]).await.expect("q").get(0);
    let before = stored_reply_count(&client, 10).await;

    // Hold the first post's batch behind a table lock, so the rest queue up
    // behind it and leave together once it is released.
    let mut blocker = veritable_tests::connect(&db.url).await;
    let lock = blocker.transaction().await.expect("begin");
    lock.execute("LOCK TABLE forum_replies IN SHARE MODE", &[]).await.expect("lock table");
    let send = |topic: &str, token: &str, body: Value| {
        let (server_url, token) = (server.url(&format!("/api/v1/forums/topics/{topic}/replies")), token.to_owned());
        tokio::spawn(async move {
            let response = reqwest::Client::new().post(server_url).bearer_auth(token).json(&body).send().await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.json::<Value>().await?))
        })
    };
    let first = send("10", &admin, json!({ "body": "first, held behind the lock" }));
    veritable_tests::until("the first batch waits for the lock", || posts_waiting_for_a_lock(&client, 1)).await;
    let nested = "<div>".repeat(300);
    // demo posts four times with a limit of three: whichever leaves the queue last gets 429.
    let demos: Vec<_> = ["one @admin", "two @admin", "three @admin", "four @admin"]
        .into_iter()
        .map(|body| send("10", &demo, json!({ "body": body })))
        .collect();
    let cases: Vec<(&str, &str, Value, u16, Option<&str>)> = vec![
        ("10", &moderator, json!({ "body": "x", "parent_id": foreign }), 422, Some("parent_id")),
        ("11", &moderator, json!({ "body": "locked" }), 409, Some("topic")),
        ("999999", &moderator, json!({ "body": "nowhere" }), 404, None),
    ];
    let mut posts: Vec<_> = cases.iter().map(|(topic, token, body, _, _)| send(topic, token, body.clone())).collect();
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", (cases.len() + 4) as f64).await;
    lock.rollback().await.expect("release");
    assert_eq!(first.await.expect("task").expect("request").0, 201);
    let mut statuses = Vec::new();
    for post in demos {
        statuses.push(post.await.expect("task").expect("request").0);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 429], "three within the limit, one past it");
    for ((_, _, _, status, field), post) in cases.iter().zip(posts.drain(..)) {
        let (got, answer) = post.await.expect("task").expect("request");
        assert_eq!(got, *status, "{answer}");
        if let Some(field) = field {
            let said = [answer["error"]["field"].as_str(), answer["error"]["code"].as_str()];
            assert!(said.contains(&Some(field)), "{answer}");
        }
    }
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_batch_fallbacks_total").await, 0.0);

    // A body the sanitizer refuses in the middle of a batch: the batch is
    // posted again one at a time; only that post fails.
    let lock = blocker.transaction().await.expect("begin");
    lock.execute("LOCK TABLE forum_replies IN SHARE MODE", &[]).await.expect("lock table");
    let first = send("12", &admin, json!({ "body": "held again" }));
    veritable_tests::until("the batch waits for the lock", || posts_waiting_for_a_lock(&client, 1)).await;
    // Someone with posts to spare (the moderator spent theirs above).
    let fresh = login(&server, &veritable_proxy::seed::username_of(20)).await;
    let good = send("12", &fresh, json!({ "body": "fine" }));
    let bad = send("12", &admin, json!({ "body": nested }));
    let also_good = send("12", &fresh, json!({ "body": "fine too" }));
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 3.0).await;
    lock.rollback().await.expect("release");
    assert_eq!(first.await.expect("task").expect("request").0, 201);
    assert_eq!(good.await.expect("task").expect("request").0, 201);
    let (status, answer) = bad.await.expect("task").expect("request");
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("body")), "{answer}");
    assert_eq!(also_good.await.expect("task").expect("request").0, 201);
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_batch_fallbacks_total").await, 1.0);

    let after = stored_reply_count(&client, 10).await;
    assert_eq!(after, before + 4, "the first post and demo's three");
    let mentioned: i64 = client
        .query_one("SELECT count(*) FROM notifications WHERE user_id = 1 AND kind = 'mention'", &[])
        .await
        .expect("q")
        .get(0);
    assert!(mentioned >= 1);
    let drift: i64 = client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("q").get(0);
    assert_eq!(drift, 0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

type PostTask = tokio::task::JoinHandle<Result<(u16, Option<String>, Value), reqwest::Error>>;

/// A reply post to topic 10 sent in a task: its status, its `Retry-After` and its JSON.
fn send_post(server: &TestServer, token: &str, body: &str) -> PostTask {
    send_post_to(server, token, 10, body)
}

async fn answer(task: PostTask) -> (u16, Option<String>, Value) {
    task.await.expect("task").expect("request")
}

/// Replies stored with exactly this source.
async fn stored(client: &tokio_postgres::Client, body: &str) -> i64 {
    client.query_one("SELECT count(*) FROM forum_replies WHERE body = $1", &[&body]).await.expect("q").get(0)
}

/// A database, a proxy posting one batch at a time (`edit` changes the
/// rest of its configuration), demo's token, and a second connection to
/// hold a lock with.
async fn one_batch_at_a_time(
    name: &str,
    edit: impl FnOnce(&mut veritable_proxy::config::ServeConfig),
) -> (FreshDb, tokio_postgres::Client, TestServer, String, tokio_postgres::Client) {
    let (db, client) = FreshDb::seeded(name, &Shape::of(Scale::Small), 6).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.post_batches = 1;
    config.posts_per_minute = 1_000;
    edit(&mut config);
    let server = TestServer::start_with(config).await;
    let token = login(&server, "demo").await;
    let blocker = veritable_tests::connect(&db.url).await;
    (db, client, server, token, blocker)
}

/// Locks the replies table in `lock` and sends a first post, which waits
/// for the lock holding the only batch slot, so that the next posts queue.
async fn hold_a_post(
    lock: &tokio_postgres::Transaction<'_>,
    client: &tokio_postgres::Client,
    server: &TestServer,
    token: &str,
) -> PostTask {
    lock.execute("LOCK TABLE forum_replies IN SHARE MODE", &[]).await.expect("lock table");
    let first = send_post(server, token, "first, held behind the lock");
    veritable_tests::until("the first post waits for the lock", || posts_waiting_for_a_lock(client, 1)).await;
    first
}

/// A full post queue answers 503 `busy` with Retry-After at once and
/// writes nothing; the posts already queued are written once the held
/// batch moves.
#[tokio::test]
async fn a_full_post_queue_answers_busy_at_once_and_writes_nothing() {
    let (db, client, server, token, mut blocker) = one_batch_at_a_time("api_post_queue_full", |config| {
        config.post_queue = 2;
        config.post_wait_ms = 30_000;
    })
    .await;
    let lock = blocker.transaction().await.expect("begin");
    let first = hold_a_post(&lock, &client, &server, &token).await;
    let queued = [send_post(&server, &token, "queued one"), send_post(&server, &token, "queued two")];
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 2.0).await;

    let (status, retry, refused) = answer(send_post(&server, &token, "one too many")).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("busy")), "{refused}");
    assert!(retry.is_some(), "a 503 says when to come back");

    lock.rollback().await.expect("release");
    assert_eq!(answer(first).await.0, 201);
    for task in queued {
        let (status, _, posted) = answer(task).await;
        assert_eq!(status, 201, "{posted}");
    }
    assert_eq!(stored(&client, "queued one").await + stored(&client, "queued two").await, 2);
    assert_eq!(stored(&client, "one too many").await, 0, "refused, so not written");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A post that waited in the queue longer than `post_wait_ms` is answered
/// 503 `busy` without being written, like a request that waited too long
/// for a connection; the post it waited behind is written.
#[tokio::test]
async fn a_post_that_waited_past_the_bound_is_refused_unwritten() {
    const WAIT_MS: u64 = 300;
    let (db, client, server, token, mut blocker) =
        one_batch_at_a_time("api_post_queue_wait", |config| config.post_wait_ms = WAIT_MS).await;
    let lock = blocker.transaction().await.expect("begin");
    let first = hold_a_post(&lock, &client, &server, &token).await;
    let late = send_post(&server, &token, "waited too long");
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 1.0).await;
    // The bound is a time: hold the batch past it (the role's lock_timeout,
    // 5 s, is far away).
    tokio::time::sleep(std::time::Duration::from_millis(WAIT_MS + 200)).await;
    lock.rollback().await.expect("release");

    assert_eq!(answer(first).await.0, 201);
    let (status, retry, refused) = answer(late).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("busy")), "{refused}");
    assert!(retry.is_some(), "a 503 says when to come back");
    assert_eq!(stored(&client, "waited too long").await, 0, "refused, so not written");
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_queue_expired_total").await, 1.0);
    let drift: i64 = client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("q").get(0);
    assert_eq!(drift, 0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A batch that waits for a pooled connection holds each post to its own
/// bound: the older post, whose bound passes first, is answered 503 then,
/// and the younger one waits on and is written once a connection is free
/// (before, the oldest post's bound was the whole batch's, so one old post
/// took every post of its batch down with it).
#[tokio::test]
async fn a_batch_waiting_for_a_connection_refuses_only_the_posts_past_their_bound() {
    // Short enough that the first post, held behind a lock meanwhile, stays
    // within its batch's own lock timeout (2 s).
    const WAIT_MS: u64 = 1_200;
    let (db, client, server, token, mut blocker) = one_batch_at_a_time("api_post_checkout_bound", |config| {
        config.post_wait_ms = WAIT_MS;
        config.db.pool_size = 2;
        // Reads wait for a connection as long as the test needs.
        config.db.pool_timeout_ms = 30_000;
    })
    .await;
    let categories: Vec<i64> = client
        .query("SELECT id FROM forum_categories ORDER BY id LIMIT 2", &[])
        .await
        .expect("categories")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(categories.len(), 2, "the seed has categories");
    // The first post holds the batch slot and one connection behind a lock
    // on the replies; two list reads behind a lock on the categories (which
    // a post does not touch; the wiki pages would not do: the activity row's
    // foreign key takes a lock on them for every reply) take the other
    // connection and wait for it.
    let replies_lock = blocker.transaction().await.expect("begin");
    let first = hold_a_post(&replies_lock, &client, &server, &token).await;
    let mut categories_blocker = veritable_tests::connect(&db.url).await;
    let categories_lock = categories_blocker.transaction().await.expect("begin");
    categories_lock.execute("LOCK TABLE forum_categories IN ACCESS EXCLUSIVE MODE", &[]).await.expect("lock");
    let reads: Vec<_> = categories
        .iter()
        .map(|id| tokio::spawn(reqwest::get(server.url(&format!("/api/v1/forums/topics?category={id}")))))
        .collect();
    veritable_tests::metrics::eventually_metric(&server, "veritable_db_pool_waiting", 1.0).await;

    let old = send_post(&server, &token, "queued first");
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 1.0).await;
    // The bound is a time: the younger post comes half of it later.
    tokio::time::sleep(std::time::Duration::from_millis(WAIT_MS / 2)).await;
    let young = send_post(&server, &token, "queued second");
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 2.0).await;
    // The first post is written; its connection goes to the waiting read,
    // so the two queued posts leave as one batch that waits for a connection.
    replies_lock.rollback().await.expect("release the replies");
    assert_eq!(answer(first).await.0, 201);

    let (status, retry, refused) = answer(old).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("database_unavailable")), "{refused}");
    assert!(retry.is_some(), "a 503 says when to come back");
    // Within the younger post's bound, the reads finish and free both connections.
    categories_lock.rollback().await.expect("release the categories");
    let (status, _, written) = answer(young).await;
    assert_eq!(status, 201, "{written}");
    for read in reads {
        assert_eq!(read.await.expect("task").expect("request").status(), 200);
    }
    assert_eq!(stored(&client, "queued first").await, 0, "refused, so not written");
    assert_eq!(stored(&client, "queued second").await, 1);
    let drift: i64 = client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("q").get(0);
    assert_eq!(drift, 0);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A batch holds at most `post_batch_rows` replies: five posts queued behind
/// a held one leave as batches of 2, 2 and 1, each post answered 201.
#[tokio::test]
async fn batches_hold_at_most_the_configured_rows() {
    let (db, client, server, token, mut blocker) = one_batch_at_a_time("api_post_batch_rows", |config| {
        config.post_batch_rows = 2;
        config.post_wait_ms = 30_000;
    })
    .await;
    let lock = blocker.transaction().await.expect("begin");
    let first = hold_a_post(&lock, &client, &server, &token).await;
    let bodies: Vec<String> = (1..=5).map(|n| format!("queued {n}")).collect();
    let queued: Vec<_> = bodies.iter().map(|body| send_post(&server, &token, body)).collect();
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 5.0).await;
    lock.rollback().await.expect("release");

    assert_eq!(answer(first).await.0, 201);
    for task in queued {
        let (status, _, posted) = answer(task).await;
        assert_eq!(status, 201, "{posted}");
    }
    for body in &bodies {
        assert_eq!(stored(&client, body).await, 1, "{body}");
    }
    // The held post alone, then 2 + 2 + 1.
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_batch_rows_count").await, 4.0);
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_batch_rows_sum").await, 6.0);
    let at_most_two = veritable_tests::metrics::metric(&server, "veritable_post_batch_rows_bucket{le=\"2\"}").await;
    assert_eq!(at_most_two, 4.0, "no batch above the bound");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Ends every backend running a post that waits for a lock (as a crash or
/// a restart of PostgreSQL would end them); how many it ended.
async fn end_waiting_posts(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%post_replies%'",
            &[],
        )
        .await
        .expect("q")
        .get(0)
}

/// A post whose connection dies mid-statement answers 503 `outcome_unknown`
/// with Retry-After, never 500 (its write may or may not have been made),
/// and so does every post of a batch that died; the pool replaces the dead
/// connections and the next post is written.
#[tokio::test]
async fn posts_whose_connection_dies_answer_outcome_unknown() {
    let (db, client, server, token, mut blocker) = one_batch_at_a_time("api_post_connection_lost", |config| {
        config.post_wait_ms = 30_000;
    })
    .await;
    let lock = blocker.transaction().await.expect("begin");
    let first = hold_a_post(&lock, &client, &server, &token).await;
    let batch = [send_post(&server, &token, "batched one"), send_post(&server, &token, "batched two")];
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_queue_length", 2.0).await;
    assert_eq!(end_waiting_posts(&client).await, 1);
    let (status, retry, lost) = answer(first).await;
    assert_eq!((status, lost["error"]["code"].as_str()), (503, Some("outcome_unknown")), "{lost}");
    assert!(retry.is_some(), "a 503 says when to come back");

    // The two queued posts leave as one batch, which waits for the lock too.
    veritable_tests::until("the batch waits for the lock", || posts_waiting_for_a_lock(&client, 1)).await;
    assert_eq!(end_waiting_posts(&client).await, 1);
    for task in batch {
        let (status, _, lost) = answer(task).await;
        assert_eq!((status, lost["error"]["code"].as_str()), (503, Some("outcome_unknown")), "{lost}");
    }
    lock.rollback().await.expect("release");
    assert_eq!(stored(&client, "batched one").await + stored(&client, "batched two").await, 0);

    let (status, _, posted) = answer(send_post(&server, &token, "after the loss")).await;
    assert_eq!(status, 201, "{posted}");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A reply post to `topic` sent in a task: its status, its `Retry-After` and its JSON.
fn send_post_to(server: &TestServer, token: &str, topic: i64, body: &str) -> PostTask {
    let (url, token) = (server.url(&format!("/api/v1/forums/topics/{topic}/replies")), token.to_owned());
    let body = json!({ "body": body });
    tokio::spawn(async move {
        let response = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await?;
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok((status, retry, response.json::<Value>().await?))
    })
}

/// A topic held `FOR UPDATE` by another transaction (a DBA's, say) stalls
/// only the posts to it: with a single batch slot, a post to that topic is
/// held out of its batch and waits alone, on its own connection, until the
/// lock timeout, then is answered 503 `row_locked` unwritten; a second one,
/// with the only lock waiter taken, is refused at once; posts to other
/// topics are written meanwhile. Once the lock goes, the topic takes posts.
#[tokio::test]
async fn a_post_stuck_behind_a_lock_fails_alone_at_the_lock_timeout() {
    let (db, client) = FreshDb::seeded("api_post_locked_row", &Shape::of(Scale::Small), 6).await;
    // The role's lock timeout in this database: 3 s instead of 5, for a shorter test.
    client.batch_execute("DO $$ BEGIN EXECUTE format('ALTER ROLE %I IN DATABASE %I SET lock_timeout = %L', current_user, current_database(), '3s'); END $$").await.expect("lock_timeout");
    let mut config = veritable_tests::serve_config(&db.url);
    config.post_batches = 1;
    config.posts_per_minute = 1_000;
    config.post_lock_waiters = 1;
    let server = TestServer::start_with(config).await;
    let token = login(&server, "demo").await;
    let mut blocker = veritable_tests::connect(&db.url).await;
    let lock = blocker.transaction().await.expect("begin");
    lock.execute("SELECT 1 FROM forum_topics WHERE id = 10 FOR UPDATE", &[]).await.expect("lock the topic");

    let stuck = send_post_to(&server, &token, 10, "stuck behind the lock");
    veritable_tests::until("the held post waits for the lock", || posts_waiting_for_a_lock(&client, 1)).await;
    let (status, retry, refused) = answer(send_post_to(&server, &token, 10, "no waiter left")).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("row_locked")), "{refused}");
    assert!(retry.is_some(), "a 503 says when to come back");
    for n in 0..3 {
        let (status, _, posted) = answer(send_post_to(&server, &token, 12, &format!("elsewhere {n}"))).await;
        assert_eq!(status, 201, "{posted}");
    }
    assert!(!stuck.is_finished(), "the stuck post waits for its lock while the others are written");
    let (status, retry, refused) = answer(stuck).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("row_locked")), "{refused}");
    assert!(retry.is_some());
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_held_total").await, 2.0);
    assert_eq!(veritable_tests::metrics::metric(&server, "veritable_post_held_refused_total").await, 1.0);
    lock.rollback().await.expect("release");

    assert_eq!(stored(&client, "stuck behind the lock").await + stored(&client, "no waiter left").await, 0);
    let (status, _, posted) = answer(send_post_to(&server, &token, 10, "after the lock")).await;
    assert_eq!(status, 201, "{posted}");
    let drift: i64 = client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("q").get(0);
    assert_eq!(drift, 0, "held posts were not counted");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A row the batch's probe cannot see (a topic's stats row held by another
/// transaction) stops the batch at its own 2 s lock timeout, not the role's;
/// its posts are then posted alone and wait for the lock like any statement
/// (here, until it is released: written).
#[tokio::test]
async fn a_batch_stopped_by_a_hidden_lock_posts_its_replies_alone() {
    let (db, client, server, token, mut blocker) = one_batch_at_a_time("api_post_hidden_lock", |_| {}).await;
    let lock = blocker.transaction().await.expect("begin");
    lock.execute("SELECT 1 FROM forum_topic_stats WHERE topic_id = 10 FOR UPDATE", &[]).await.expect("lock stats");
    let first = send_post_to(&server, &token, 10, "behind a hidden lock");
    veritable_tests::metrics::eventually_metric(&server, "veritable_post_held_total", 1.0).await;
    veritable_tests::until("it waits alone for the lock", || posts_waiting_for_a_lock(&client, 1)).await;
    lock.rollback().await.expect("release");
    let (status, _, posted) = answer(first).await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(stored(&client, "behind a hidden lock").await, 1);
    server.stop().await.expect("stop");
    db.drop_db().await;
}
