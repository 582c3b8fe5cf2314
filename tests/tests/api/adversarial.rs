//! Adversarial input against the real extension and the real proxy: every
//! shape of the corpus is refused with a clear error or rendered within its
//! bounds, a long call inside PostgreSQL stops at `statement_timeout`, and
//! text PostgreSQL cannot store (NUL) is a 422 naming the field, never a 500.

use std::time::Instant;

use serde_json::json;
use veritable_core::sanitize::corpus::{self, Format};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{Api, FreshDb, TestServer, connect, database_url, sqlstate};

/// A proxy on a database of the test's own: these tests write users, topics
/// and replies that other suites' assertions on the shared seed would see.
async fn fresh_server(name: &str) -> (FreshDb, TestServer) {
    let (db, _client) = FreshDb::seeded(name, &Shape::of(Scale::Small), 31).await;
    let server = TestServer::start(&db.url).await;
    (db, server)
}

/// A topic of the test's own.
async fn own_topic(api: &Api) -> i64 {
    let (status, topic) = api
        .call("POST", "/api/v1/forums/topics", Some(json!({"category_id": 1, "title": "adversarial", "body": "x"})))
        .await;
    assert_eq!(status, 201, "{topic}");
    topic["id"].as_i64().expect("id")
}

/// Each corpus shape through the extension itself: refused with 54000
/// (a cost bound) or rendered; never another error, never unbounded output.
#[tokio::test]
async fn every_adversarial_shape_is_refused_or_bounded_in_the_database() {
    let client = connect(&database_url()).await;
    for shape in corpus::shapes(100_000) {
        let function = if shape.format == Format::Html { "sanitize_html" } else { "render_markdown" };
        let result = client.query_one(&format!("SELECT octet_length(veritable.{function}($1))"), &[&shape.text]).await;
        match result {
            Ok(row) => {
                let bytes: i32 = row.get(0);
                assert!(
                    bytes as usize <= veritable_core::sanitize::html_limit(100_000),
                    "{}: {bytes} bytes",
                    shape.name
                );
            }
            Err(error) => assert_eq!(error.code().map(|c| c.code()), Some("54000"), "{}: {error}", shape.name),
        }
    }
}

/// A single call that runs longer than the statement timeout is stopped
/// inside the sanitizer, not when it returns, on a fresh connection (whose
/// first ERROR through Rust once cost 85 ms of backtrace symbolizing).
#[tokio::test]
async fn statement_timeout_stops_a_long_call_inside_the_sanitizer() {
    let client = connect(&database_url()).await;
    client
        .batch_execute("SET veritable.max_content_bytes = 1000000; SET statement_timeout = 0")
        .await
        .expect("settings");
    // 1 MB of honest forum HTML (the largest input the settings allow):
    // one call alone, timed, then cut at a tenth of it.
    let doc = corpus::FORUM_UNIT.repeat(1_000_000 / corpus::FORUM_UNIT.len());
    let started = Instant::now();
    client.query_one("SELECT octet_length(veritable.sanitize_html($1))", &[&doc]).await.expect("one call");
    let one_call = started.elapsed();
    let timeout_ms = (one_call.as_millis() / 10).max(5);
    client.batch_execute(&format!("SET statement_timeout = {timeout_ms}")).await.expect("timeout");
    let started = Instant::now();
    let code = sqlstate(client.query_one("SELECT octet_length(veritable.sanitize_html($1))", &[&doc]).await);
    let stopped = started.elapsed();
    assert_eq!(code, "57014", "canceled by statement_timeout");
    assert!(stopped < one_call / 2, "a {timeout_ms} ms timeout stopped a {one_call:?} call only after {stopped:?}");
}

#[tokio::test]
async fn a_crafted_reply_is_a_422_not_a_busy_database() {
    let (db, server) = fresh_server("adv_crafted_reply").await;
    let api = Api::signed_in(&server, "demo").await;
    let topic = own_topic(&api).await;
    // The shape of the reported 80 KB reply: comments HTML ends early hide
    // thousands of open elements from a byte scanner.
    let body = "<!--><div>\n".repeat(7_000);
    let (status, error) =
        api.call("POST", &format!("/api/v1/forums/topics/{topic}/replies"), Some(json!({ "body": body }))).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "validation_failed");
    assert_eq!(error["error"]["field"], "body");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("levels deep")), "{error}");
    // An ordinary reply still goes through.
    let (status, reply) = api
        .call("POST", &format!("/api/v1/forums/topics/{topic}/replies"), Some(json!({ "body": "fine *text*" })))
        .await;
    assert_eq!(status, 201, "{reply}");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

#[tokio::test]
async fn nul_bytes_are_a_422_naming_the_field() {
    let (db, server) = fresh_server("adv_nul_bytes").await;
    let api = Api::signed_in(&server, "demo").await;
    let cases = [
        ("POST", "/api/v1/forums/topics", json!({"category_id": 1, "title": "a\u{0}b", "body": "x"}), "title"),
        (
            "POST",
            "/api/v1/forums/topics",
            json!({"category_id": 1, "title": "t", "body": "x", "tags": ["ok", "b\u{0}"]}),
            "tags[1]",
        ),
        ("PUT", "/api/v1/wiki/pages/nul-test", json!({"title": "t", "body": "\u{0}", "base_revision": 0}), "body"),
        ("PUT", "/api/v1/me/preferences", json!({"theme\u{0}": "dark"}), "theme\\u0000"),
        ("POST", "/api/v1/auth/login", json!({"username": "demo\u{0}", "password": "x"}), "username"),
    ];
    for (method, path, body, field) in cases {
        let (status, error) = api.call(method, path, Some(body)).await;
        assert_eq!(status, 422, "{method} {path}: {error}");
        assert_eq!(error["error"]["field"], field, "{method} {path}: {error}");
    }
    // In a query parameter it is a bad parameter: 400, like any other.
    for path in ["/api/v1/search?q=a%00b", "/api/v1/forums/topics?cursor=%00", "/api/v1/wiki/pages?cursor=x%00"] {
        let (status, error) = api.get(path).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("NUL")), "{path}: {error}");
    }
    // A NUL in a path segment is a bad id or slug (400), not a database error.
    let (status, _) = api.get("/api/v1/wiki/pages/a%00b").await;
    assert_eq!(status, 400);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// The registration rules are the table's CHECKs, so no CHECK failure is
/// left to become a 500 or a misleading "taken".
#[tokio::test]
async fn registration_validates_what_the_table_checks() {
    let (db, server) = fresh_server("adv_registration").await;
    let api = Api::new(&server);
    for (email, ok) in
        [("ab@", false), ("@ab", false), ("é@", false), ("a@b", true), ("a b@c", false), ("a@b\u{a0}c", false)]
    {
        let name = format!("reg_{}", email.len() * 7 + usize::from(ok) + email.chars().count());
        let body = json!({"username": name, "email": email, "password": "long enough password"});
        let (status, answer) = api.call("POST", "/api/v1/auth/register", Some(body)).await;
        if ok {
            assert!(status == 201 || status == 409, "{email:?}: {answer}");
        } else {
            assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("email")), "{email:?}: {answer}");
        }
    }
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Cookie-signed writes from another site are refused (CSRF); the same
/// write with a bearer token, or from this site, goes through.
#[tokio::test]
async fn cookie_writes_from_another_site_are_refused() {
    let (db, server) = fresh_server("adv_csrf").await;
    let api = Api::signed_in(&server, "demo").await;
    let token = api.token.clone().expect("token");
    let http = reqwest::Client::new();
    let url = server.url(&format!("/api/v1/forums/topics/{}/replies", own_topic(&api).await));
    let own = format!("http://{}", server.addr);
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = http.post(&url).json(&json!({ "body": "csrf check" }));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let cookie = format!("veritable_session={token}");
    let cases = [
        (vec![("cookie", cookie.clone()), ("origin", "https://evil.example".to_owned())], 403),
        (vec![("cookie", cookie.clone()), ("sec-fetch-site", "cross-site".to_owned())], 403),
        (vec![("cookie", cookie.clone()), ("origin", format!("https://{}", server.addr))], 403),
        (vec![("cookie", cookie.clone()), ("origin", own.clone()), ("sec-fetch-site", "same-origin".to_owned())], 201),
        (vec![("cookie", cookie.clone())], 201),
        (vec![("authorization", format!("Bearer {token}")), ("origin", "https://evil.example".to_owned())], 201),
    ];
    for (headers, want) in cases {
        let shown = format!("{headers:?}");
        let response = post(headers).await.expect("request");
        assert_eq!(response.status().as_u16(), want, "{shown}");
    }
    // Reading with a cookie from anywhere is fine: reads change nothing.
    let me =
        http.get(server.url("/api/v1/me")).header("cookie", cookie).header("sec-fetch-site", "cross-site").send().await;
    assert_eq!(me.expect("request").status(), 200);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Search has a cost bound of its own: a search past its time budget is
/// canceled inside PostgreSQL (422 on `q`), only a few run at once (503
/// past them), and long queries are refused before they run.
#[tokio::test]
async fn searches_are_bounded_in_time_and_number() {
    let (db, client) = FreshDb::seeded("adv_search", &Shape::of(Scale::Small), 31).await;
    // 500 replies whose ranking re-reads 100 KB each: seconds of work.
    client
        .batch_execute(
            "SET statement_timeout = 0;
             INSERT INTO forum_replies (topic_id, author_id, body)
             SELECT 3, 1, repeat('zebra stripes and more stripes ', 3200) FROM generate_series(1, 500);
             ANALYZE forum_replies",
        )
        .await
        .expect("slow data");
    let mut config = veritable_tests::serve_config(&db.url);
    config.search_timeout_ms = 100;
    config.search_concurrency = 1;
    let server = TestServer::start_with(config).await;
    let api = Api::new(&server);

    let started = Instant::now();
    let (status, error) = api.get("/api/v1/search?q=zebra+stripes").await;
    assert_eq!((status, error["error"]["field"].as_str()), (422, Some("q")), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "canceled, not run to the end: {:?}",
        started.elapsed()
    );
    // The cancel request reaches the backend a moment after the 422: await it, never assume it.
    veritable_tests::until("the canceled search is not running any more", || async {
        let still: i64 = client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'WITH q AS (SELECT websearch_to_tsquery%'", &[])
            .await
            .expect("q")
            .get(0);
        still == 0
    })
    .await;

    let words = vec!["w"; 17].join("+");
    assert_eq!(api.get(&format!("/api/v1/search?q={words}")).await.0, 400);

    // One slot: while a slow search runs, a second is answered 503 at once.
    let slow = {
        let api = api.clone();
        tokio::spawn(async move { api.get("/api/v1/search?q=zebra").await.0 })
    };
    veritable_tests::until("the slow search is running", || async {
        let active: i64 = client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'WITH q AS (SELECT websearch_to_tsquery%'", &[])
            .await
            .expect("q")
            .get(0);
        active == 1
    })
    .await;
    let (status, error) = api.get("/api/v1/search?q=stripes").await;
    assert_eq!((status, error["error"]["code"].as_str()), (503, Some("busy")), "{error}");
    assert_eq!(slow.await.expect("task"), 422);
    server.stop().await.expect("stop");
    db.drop_db().await;
}
