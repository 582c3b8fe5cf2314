//! What the web page needs of the proxy: its files (cache rules, encodings,
//! the Content-Security-Policy), the Markdown preview and a reply's subtree.
//! The page itself runs in Chromium: tests/browser (`cargo xtask test`).

use serde_json::json;
use veritable_tests::{Api, TestServer, connect, database_url};

use crate::forums::get_encoded;

/// The files `client/index.html` loads, and what each is.
const FILES: &[(&str, &str)] = &[
    ("app.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("dom.js", "text/javascript; charset=utf-8"),
    ("forum.js", "text/javascript; charset=utf-8"),
    ("wiki.js", "text/javascript; charset=utf-8"),
    ("people.js", "text/javascript; charset=utf-8"),
    ("veritable-api.js", "text/javascript; charset=utf-8"),
    ("veritable-realtime.js", "text/javascript; charset=utf-8"),
];

fn source(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_cache_rules_and_a_strict_policy() {
    let server = TestServer::start(&database_url()).await;
    let http = reqwest::Client::new();
    let page = http.get(server.url("/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache", "the page is revalidated");
    let policy = header(&page, "content-security-policy");
    for rule in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(rule), "{rule} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "no inline script or eval: {policy}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let etag = header(&page, "etag");
    let html = page.text().await.expect("the page");
    assert!(!html.contains("/assets/dev/"), "the page names its files under its version");
    let version = html.split("/assets/").nth(1).and_then(|rest| rest.split('/').next()).expect("a versioned path");
    assert_eq!(version.len(), 12, "{version}");

    let again = http.get(server.url("/")).header("if-none-match", &etag).send().await.expect("GET / again");
    assert_eq!(again.status(), 304, "a revalidation with the ETag is a 304");
    assert!(again.bytes().await.expect("no body").is_empty());

    for (name, kind) in FILES {
        assert!(html.contains(&format!("/assets/{version}/")), "the page loads its files by version");
        let path = format!("/assets/{version}/{name}");
        let file = http.get(server.url(&path)).send().await.expect("a file");
        assert_eq!(file.status(), 200, "{path}");
        assert_eq!(header(&file, "content-type"), *kind, "{path}");
        assert_eq!(header(&file, "cache-control"), "public, max-age=31536000, immutable", "{path}");
        assert_eq!(file.text().await.expect("text"), source(name), "{path} is client/{name}");
        let (status, encoding, vary, text) = get_encoded(&server, &path, "gzip, br").await;
        assert_eq!((status, encoding.as_deref(), vary.as_deref()), (200, Some("br"), Some("accept-encoding")));
        assert_eq!(text, source(name), "{path} in brotli");
    }

    // A page of another build (a rolling restart) still gets the files, not kept.
    let other = http.get(server.url("/assets/0123456789ab/app.js")).send().await.expect("another version");
    assert_eq!((other.status().as_u16(), header(&other, "cache-control").as_str()), (200, "no-cache"));
    for path in [
        format!("/assets/{version}/missing.js"),
        format!("/assets/{version}/..%2f..%2fCargo.toml"),
        format!("/assets/{version}/index.html/x"),
        "/index.html".to_owned(),
    ] {
        let (status, body) = Api::new(&server).get(&path).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{path}");
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_preview_renders_as_a_post_is_stored_and_refuses_what_a_post_would() {
    let server = TestServer::start(&database_url()).await;
    let api = Api::signed_in(&server, "demo").await;
    let (status, body) = Api::new(&server).call("POST", "/api/v1/preview", Some(json!({ "body": "x" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    let (status, body) =
        api.call("POST", "/api/v1/preview", Some(json!({ "body": "**hi** <script>alert(1)</script>" }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["body_html"], "<p><strong>hi</strong> </p>\n", "what the reply test sees stored");
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/preview",
            Some(json!({ "body": "[a](javascript:alert(1)) <img src=x onerror=alert(2)>" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let html = body["body_html"].as_str().expect("html");
    assert!(!html.contains("javascript") && !html.contains("onerror") && !html.contains("<img"), "{html}");

    for (request, status, field) in [
        (json!({ "body": "x".repeat(100_001) }), 422, Some("body")),
        (json!({ "body": format!("{}x", "> ".repeat(300)) }), 422, Some("body")),
        (json!({ "text": "x" }), 422, Some("body")),
    ] {
        let (got, answer) = api.call("POST", "/api/v1/preview", Some(request)).await;
        assert_eq!((got, answer["error"]["field"].as_str()), (status, field), "{answer}");
    }
    server.stop().await.expect("stop");
}

/// At the bound (here 0 renders at once: every preview is past it), a
/// preview is refused at once with 503 `busy` and a Retry-After.
#[tokio::test]
async fn a_preview_past_the_renders_bound_is_503_busy_at_once() {
    let mut config = veritable_tests::serve_config(&database_url());
    config.preview_concurrency = 0;
    let server = TestServer::start_with(config).await;
    let api = Api::signed_in(&server, "demo").await;
    let (status, headers, body) = api.send("POST", "/api/v1/preview", Some(json!({ "body": "**hi**" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("busy")), "{body}");
    assert!(headers.contains_key("retry-after"), "a Retry-After");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_replys_subtree_continues_a_cut_thread_and_fetches_one_reply() {
    let client = connect(&database_url()).await;
    // A reply deep in the seed's chain topic, with replies below it.
    let row = client
        .query_one(
            "SELECT r.id, r.depth, r.topic_id FROM forum_replies r
              WHERE r.depth = 20 AND NOT r.is_deleted
                AND EXISTS (SELECT 1 FROM forum_replies c WHERE c.parent_id = r.id)
              ORDER BY r.id LIMIT 1",
            &[],
        )
        .await
        .expect("a reply 20 deep");
    let (reply, depth, topic): (i64, i32, i64) = (row.get(0), row.get(1), row.get(2));
    let server = TestServer::start(&database_url()).await;
    let api = Api::new(&server);

    let (status, tree) = api.get(&format!("/api/v1/forums/replies/{reply}/replies?depth=3")).await;
    assert_eq!(status, 200, "{tree}");
    let items = tree["items"].as_array().expect("items");
    assert_eq!(items[0]["id"], reply, "the reply first");
    assert_eq!(items[0]["depth"], depth, "depth counted from the topic");
    assert!(items.len() > 1, "and what is below it");
    assert!(items.iter().all(|i| i["depth"].as_i64().is_some_and(|d| d >= i64::from(depth))));

    let (status, one) = api.get(&format!("/api/v1/forums/replies/{reply}/replies?depth=1&limit=1")).await;
    assert_eq!(status, 200);
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["items"][0]["id"], reply, "the one reply an event names");

    let foreign: i64 = client
        .query_one("SELECT id FROM forum_replies WHERE topic_id <> $1 LIMIT 1", &[&topic])
        .await
        .expect("another topic's reply")
        .get(0);
    for (path, status) in [
        ("/api/v1/forums/replies/abc/replies".to_owned(), 400),
        (format!("/api/v1/forums/replies/{reply}/replies?depth=0"), 400),
        (format!("/api/v1/forums/replies/{reply}/replies?limit=501"), 400),
        (format!("/api/v1/forums/replies/{reply}/replies?after=0"), 400),
        (format!("/api/v1/forums/replies/{reply}/replies?after={foreign}"), 400),
        ("/api/v1/forums/replies/999999999/replies".to_owned(), 404),
    ] {
        let (got, body) = api.get(&path).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    server.stop().await.expect("stop");
}
