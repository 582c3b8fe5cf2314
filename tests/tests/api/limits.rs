//! Login rate limits live in PostgreSQL: two proxies count against the same
//! windows, and past a limit the answer is 429 with Retry-After.

use serde_json::{Value, json};
use veritable_tests::{Api, FreshDb, TestServer};

async fn login(server: &TestServer, username: &str) -> (u16, Option<String>, Value) {
    let body = json!({ "username": username, "password": "whatever-it-is" });
    let (status, headers, body) = Api::new(server).send("POST", "/api/v1/auth/login", Some(body)).await;
    let retry = headers.get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry, body)
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
    let swept: i64 =
        client.query_one("SELECT veritable.rate_limit_sweep(interval '0 seconds')", &[]).await.expect("q").get(0);
    assert_eq!(swept, rows, "housekeeping removes old windows");

    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}

/// A login from another address is not locked out by someone failing an
/// account's logins: the account's window is per account and address.
#[tokio::test]
async fn failed_logins_elsewhere_do_not_lock_an_account_out() {
    let (db, _client) = FreshDb::migrated("login_lockout").await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.login_per_account = 2;
    config.login_per_ip = 100;
    let server = TestServer::start_with(config).await;
    for _ in 0..2 {
        assert_eq!(login(&server, "victim").await.0, 401);
    }
    let (status, _, body) = login(&server, "victim").await;
    assert_eq!(status, 429, "this address is over its window for the account: {body}");
    // The same account from 127.0.0.2 (another loopback address) still gets to try.
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client");
    let response = elsewhere
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "victim", "password": "whatever-it-is" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401, "not locked out from another address");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Edits, deletes, wiki saves, marking read and preferences count against
/// one per-user window in PostgreSQL, shared by every proxy.
#[tokio::test]
async fn other_writes_are_rate_limited_per_user_across_proxies() {
    let (db, _client) = FreshDb::migrated("write_limits").await;
    let config = || {
        let mut config = veritable_tests::serve_config(&db.url);
        config.writes_per_minute = 3;
        config
    };
    let a = TestServer::start_with(config()).await;
    let b = TestServer::start_with(config()).await;
    let mut writer = veritable_tests::Api::new(&a);
    let (status, body) = writer
        .call(
            "POST",
            "/api/v1/auth/register",
            Some(json!({"username": "writer_one", "email": "w@x.test", "password": "long enough password"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    writer.token = Some(body["token"].as_str().expect("token").to_owned());
    let mut on_b = veritable_tests::Api::new(&b);
    on_b.token = writer.token.clone();
    for (api, path) in
        [(&writer, "/api/v1/me/preferences"), (&on_b, "/api/v1/me/preferences"), (&writer, "/api/v1/me/preferences")]
    {
        let (status, body) = api.call("PUT", path, Some(json!({"theme": "dark"}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = on_b.call("POST", "/api/v1/notifications/read", Some(json!({"all": true}))).await;
    assert_eq!(status, 429, "the fourth write, on the other proxy: {body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Reads are not writes.
    assert_eq!(writer.get("/api/v1/me/preferences").await.0, 200);
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}

/// Registrations per client address per hour, checked before any hashing;
/// a taken name is a 409 without hashing either.
#[tokio::test]
async fn registration_is_limited_per_address() {
    let (db, _client) = FreshDb::migrated("register_limits").await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.registrations_per_hour = 2;
    let server = TestServer::start_with(config).await;
    let api = veritable_tests::Api::new(&server);
    let register =
        |name: &str| json!({"username": name, "email": format!("{name}@x.test"), "password": "long enough password"});
    assert_eq!(api.call("POST", "/api/v1/auth/register", Some(register("first_one"))).await.0, 201);
    let (status, body) = api.call("POST", "/api/v1/auth/register", Some(register("First_One"))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (409, Some("username")), "{body}");
    let (status, body) = api.call("POST", "/api/v1/auth/register", Some(register("third_one"))).await;
    assert_eq!(status, 429, "{body}");
    server.stop().await.expect("stop");
    db.drop_db().await;
}
