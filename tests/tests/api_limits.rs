//! Login rate limits live in PostgreSQL: two proxies count against the same
//! windows, and past a limit the answer is 429 with Retry-After.

use serde_json::{Value, json};
use veritable_tests::{FreshDb, TestServer};

async fn login(server: &TestServer, username: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": "whatever-it-is" }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn login_limits_hold_across_two_proxies() {
    let (db, client) = FreshDb::migrated("login_limits").await;
    let config = || {
        let mut config = veritable_tests::serve_config(&db.url);
        config.login_per_account = 3;
        config.login_per_ip = 5;
        config
    };
    let a = TestServer::start_with(config()).await;
    let b = TestServer::start_with(config()).await;

    // Three attempts on one account, alternating proxies: refused as wrong, not limited.
    for server in [&a, &b, &a] {
        let (status, _, body) = login(server, "Someone").await;
        assert_eq!(status, 401, "{body}");
    }
    // The fourth, on either proxy and in any case, is over the account's limit.
    let (status, retry, body) = login(&b, "someone").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let seconds: u32 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&seconds));

    // The address has made 4 attempts; its limit is 5.
    let (status, _, _) = login(&a, "another_one").await;
    assert_eq!(status, 401);
    let (status, _, body) = login(&b, "a_third_name").await;
    assert_eq!(status, 429, "past the per-address limit: {body}");

    let rows: i64 = client.query_one("SELECT count(*) FROM rate_limits", &[]).await.expect("q").get(0);
    assert!(rows >= 3);
    let swept: i64 = client.query_one("SELECT veritable.rate_limit_sweep(interval '0 seconds')", &[]).await.expect("q").get(0);
    assert_eq!(swept, rows, "housekeeping removes old windows");

    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}
