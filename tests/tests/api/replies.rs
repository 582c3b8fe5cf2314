//! Posting replies over real HTTP, on a database of its own.

use serde_json::{Value, json};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
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
    let before: i32 =
        client.query_one("SELECT reply_count FROM forum_topic_stats WHERE topic_id = 10", &[]).await.expect("q").get(0);

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
    let after: i32 =
        client.query_one("SELECT reply_count FROM forum_topic_stats WHERE topic_id = 10", &[]).await.expect("q").get(0);
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

/// Whether exactly `n` reply statements wait for a lock.
async fn posts_waiting_for_a_lock(client: &tokio_postgres::Client, n: i64) -> bool {
    let waiting: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%post_replies%'",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    waiting == n
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
    let server = TestServer::start_with(config).await;
    let demo = login(&server, "demo").await;
    let admin = login(&server, "admin").await;
    let moderator = login(&server, "moderator").await;
    client.execute("UPDATE forum_topics SET is_locked = true WHERE id = 11", &[]).await.expect("lock");
    let foreign: i64 =
        client.query_one("SELECT id FROM forum_replies WHERE topic_id <> 10 LIMIT 1", &[]).await.expect("q").get(0);
    let before: i32 =
        client.query_one("SELECT reply_count FROM forum_topic_stats WHERE topic_id = 10", &[]).await.expect("q").get(0);

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

    let after: i32 =
        client.query_one("SELECT reply_count FROM forum_topic_stats WHERE topic_id = 10", &[]).await.expect("q").get(0);
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
