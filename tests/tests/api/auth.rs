//! Accounts and sessions over real HTTP: register, login, me, logout, and
//! every refusal as a JSON error.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use veritable_tests::{Api, TestServer, database_url};

async fn post(server: &TestServer, path: &str, body: &Value, token: Option<&str>) -> (u16, HeaderMap, Value) {
    Api::new(server).with_token(token).send("POST", path, Some(body.clone())).await
}

async fn me(server: &TestServer, token: &str) -> (u16, Value) {
    Api::new(server).with_token(Some(token)).get("/api/v1/me").await
}

/// A username no earlier run used.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}", nanos % 1_000_000_000_000)
}

#[tokio::test]
async fn register_me_logout_and_login_again() {
    let server = TestServer::start(&database_url()).await;
    let name = unique("reg");
    let body = json!({ "username": name, "email": format!("{name}@example.test"), "password": "correct horse" });
    let (status, headers, created) = post(&server, "/api/v1/auth/register", &body, None).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 64);
    let cookie = headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.starts_with("veritable_session="));
    assert_eq!(created["user"]["username"], name.as_str());

    let (status, who) = me(&server, &token).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["username"], name.as_str());
    // The cookie works too.
    let response = reqwest::Client::new()
        .get(server.url("/api/v1/me"))
        .header("cookie", format!("other=1; veritable_session={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    let (status, _, _) = post(&server, "/api/v1/auth/logout", &json!({}), Some(&token)).await;
    assert_eq!(status, 204);
    let (status, refused) = me(&server, &token).await;
    assert_eq!(status, 401, "a revoked token stops working at once on this proxy");
    assert_eq!(refused["error"]["code"], "unauthorized");

    let (status, _, again) = post(
        &server,
        "/api/v1/auth/login",
        &json!({ "username": name.to_uppercase(), "password": "correct horse" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "usernames are case-insensitive: {again}");
    // The stored token is its SHA-256, never the token.
    let client = veritable_tests::connect(&database_url()).await;
    let raw: i64 = client
        .query_one("SELECT count(*) FROM sessions WHERE encode(token_hash, 'hex') = $1", &[&again["token"].as_str()])
        .await
        .expect("query")
        .get(0);
    assert_eq!(raw, 0);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_seeded_demo_account_logs_in() {
    let server = TestServer::start(&database_url()).await;
    let (status, _, body) =
        post(&server, "/api/v1/auth/login", &json!({ "username": "demo", "password": "veritable-demo" }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "member");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_401() {
    let server = TestServer::start(&database_url()).await;
    let (s1, _, wrong) =
        post(&server, "/api/v1/auth/login", &json!({ "username": "demo", "password": "nope-nope" }), None).await;
    let (s2, _, unknown) =
        post(&server, "/api/v1/auth/login", &json!({ "username": "nobody_at_all", "password": "nope-nope" }), None)
            .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong, unknown);
    for token in ["", "abc", &"z".repeat(64), &"a".repeat(64)] {
        let (status, body) = me(&server, token).await;
        assert_eq!(status, 401, "{token}: {body}");
    }
    let response = reqwest::get(server.url("/api/v1/me")).await.expect("request");
    assert_eq!(response.status(), 401);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_registrations_name_the_field() {
    let server = TestServer::start(&database_url()).await;
    let ok_name = unique("fld");
    let cases = [
        (json!({ "username": "a b", "email": "x@y.test", "password": "long enough" }), 422, "username"),
        (json!({ "username": ok_name, "email": "not-an-email", "password": "long enough" }), 422, "email"),
        (json!({ "username": ok_name, "email": "x@y.test", "password": "short" }), 422, "password"),
        (
            json!({ "username": ok_name, "email": "x@y.test", "password": "long enough", "display_name": "  " }),
            422,
            "display_name",
        ),
        (json!({ "username": "admin", "email": "new-admin@y.test", "password": "long enough" }), 409, "username"),
        (json!({ "username": ok_name, "email": "admin@example.test", "password": "long enough" }), 409, "email"),
        (json!({ "username": 42, "email": "x@y.test", "password": "long enough" }), 422, "body"),
        (json!({ "username": ok_name, "password": "long enough" }), 422, "body"),
        (json!({ "username": ok_name, "email": "x@y.test", "password": "long enough", "role": "admin" }), 422, "body"),
    ];
    for (body, status, field) in cases {
        let (got, _, answer) = post(&server, "/api/v1/auth/register", &body, None).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    // Malformed JSON and oversized bodies.
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["error"]["field"], "body");
    let huge = format!("{{\"username\":\"{}\"}}", "x".repeat(300 * 1024));
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_lookup_renews_a_session_near_its_end() {
    let server = TestServer::start(&database_url()).await;
    let (status, _, body) =
        post(&server, "/api/v1/auth/login", &json!({ "username": "demo", "password": "veritable-demo" }), None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    // Never looked up yet, so not cached: the next request reads the database.
    let client = veritable_tests::connect(&database_url()).await;
    client
        .execute(
            "UPDATE sessions SET expires_at = now() + interval '1 hour' WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .expect("shorten");
    let (status, who) = me(&server, &token).await;
    assert_eq!(status, 200, "{who}");
    let days_left: f64 = client
        .query_one(
            "SELECT extract(epoch FROM expires_at - now())::float8 / 86400 FROM sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .expect("expiry")
        .get(0);
    assert!(days_left > 29.0, "renewed to 30 days: {days_left}");
    assert!(who["session_expires_at"].as_i64().is_some());
    server.stop().await.expect("stop");
}

/// Hashing runs on a bounded pool: past its wait, a login flood gets 503
/// `busy` with Retry-After instead of queueing without end.
#[tokio::test]
async fn hashing_past_its_queue_bound_answers_503() {
    let mut config = veritable_tests::serve_config(&database_url());
    config.hash_threads = Some(1);
    config.hash_wait_ms = 1;
    config.login_per_ip = 1000;
    config.login_per_account = 1000;
    let server = TestServer::start_with(config).await;
    // An account of its own: the limits' counters are shared through the database.
    let name = unique("flood");
    let attempts = (0..8).map(|_| {
        let url = server.url("/api/v1/auth/login");
        let name = name.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&json!({ "username": name, "password": "wrong-password" }))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let retry = response.headers().contains_key("retry-after");
            let body: Value = response.json().await.expect("JSON");
            (status, retry, body)
        })
    });
    let mut outcomes = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        outcomes.push(attempt.await.expect("task"));
    }
    assert!(outcomes.iter().any(|(s, _, _)| *s == 401), "some attempts were hashed: {outcomes:?}");
    let busy: Vec<_> = outcomes.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "one hashing thread and a 1 ms wait turn some away: {outcomes:?}");
    for (_, retry, body) in busy {
        assert!(*retry);
        assert_eq!(body["error"]["code"], "busy");
    }
    server.stop().await.expect("stop");
}

/// The proxy's pooled backends, stopped (SIGSTOP) until dropped: a disk or
/// machine stall as the proxy sees it, and nobody else's.
struct Stalled(Vec<String>);

impl Stalled {
    /// None when no backend carries the name now: through pgbouncer a
    /// server backend carries the name of the client that used it last.
    async fn backends_of(application_name: &str) -> Option<Self> {
        let client = veritable_tests::connect(&database_url()).await;
        let pids: Vec<String> = client
            .query("SELECT pid::text FROM pg_stat_activity WHERE application_name = $1", &[&application_name])
            .await
            .expect("the proxy's backends")
            .iter()
            .map(|row| row.get(0))
            .collect();
        if pids.is_empty() {
            return None;
        }
        let stopped = std::process::Command::new("kill").arg("-STOP").args(&pids).status().expect("kill -STOP");
        assert!(stopped.success(), "stopped {pids:?}");
        Some(Self(pids))
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-CONT").args(&self.0).status();
    }
}

/// A session's record past its trust period is served while one check in
/// the background confirms it: with every pooled backend of the proxy
/// stopped, signed-in requests are answered from their records at once
/// instead of each waiting for a connection to re-check its session.
#[tokio::test]
async fn a_stale_session_is_served_while_postgresql_stalls() {
    let mut config = veritable_tests::serve_config(&database_url());
    let application_name = unique("stall");
    config.db.url.application_name(&application_name);
    config.db.pool_size = 4;
    // Every use after the first finds the record stale.
    config.session_cache_ms = 0;
    let server = TestServer::start_with(config).await;
    let (status, _, body) =
        post(&server, "/api/v1/auth/login", &json!({ "username": "demo", "password": "veritable-demo" }), None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let (status, _) = me(&server, &token).await;
    assert_eq!(status, 200, "checked and cached");

    // Directly, the pool's backends carry the proxy's name from the start;
    // through pgbouncer, other clients' transactions rename the backends
    // they borrow, so each look follows a request of this proxy's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stalled = loop {
        if let Some(stalled) = Stalled::backends_of(&application_name).await {
            break stalled;
        }
        assert!(std::time::Instant::now() < deadline, "no backend carries the proxy's name within 10 s");
        assert_eq!(me(&server, &token).await.0, 200);
    };
    // More requests than the pool has connections and than background checks.
    for n in 0..12 {
        let started = std::time::Instant::now();
        let (status, who) =
            tokio::time::timeout(std::time::Duration::from_secs(5), me(&server, &token)).await.expect("answered");
        assert_eq!(status, 200, "request {n} during the stall: {who}");
        assert_eq!(who["username"], "demo");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "request {n} waited {:?}", started.elapsed());
    }
    drop(stalled);
    // Once PostgreSQL answers again, the checks finish and refresh the record.
    let (status, _) = me(&server, &token).await;
    assert_eq!(status, 200);
    server.stop().await.expect("stop");
}
