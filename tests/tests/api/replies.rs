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
