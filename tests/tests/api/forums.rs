//! The forum read API over real HTTP: categories, topic pages to the end,
//! reply trees with continuation, and JSON errors for bad input.

use std::time::Duration;

use serde_json::Value;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::api::listed_reply_count;
use veritable_tests::db::stored_reply_count;
use veritable_tests::{Api, TestServer, closed_port, connect, database_url};

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    Api::new(server).get(path).await
}

fn assert_invalid(body: &Value, field: &str) {
    assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn categories_are_listed_in_order() {
    let server = TestServer::start(&database_url()).await;
    let (status, body) = get(&server, "/api/v1/forums/categories").await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), Shape::of(Scale::Small).categories as usize);
    let positions: Vec<i64> = items.iter().map(|c| c["position"].as_i64().expect("position")).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn topic_pages_follow_next_cursor_to_the_end() {
    let server = TestServer::start(&database_url()).await;
    let mut ids = Vec::new();
    let mut path = "/api/v1/forums/topics?category=1&limit=13".to_owned();
    loop {
        let (status, body) = get(&server, &path).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().expect("items");
        assert!(items.len() <= 13);
        for item in items {
            ids.push(item["id"].as_i64().expect("id"));
            assert!(item["title"].is_string() && item["author_name"].is_string() && item["tags"].is_array());
            assert!(item.get("next_cursor").is_none() && item.get("ordinality").is_none(), "{item}");
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/forums/topics?category=1&limit=13&cursor={cursor}"),
            None => break,
        }
    }
    let client = connect(&database_url()).await;
    let expected: Vec<i64> = client
        .query(
            "SELECT topic_id FROM forum_topic_stats WHERE category_id = 1 AND NOT is_deleted ORDER BY is_pinned DESC, last_activity_at DESC, topic_id DESC",
            &[],
        )
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, expected);
    let (status, body) = get(&server, "/api/v1/forums/topics").await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(20), "20 by default, all categories");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_topic_queries_get_400_naming_the_parameter() {
    let server = TestServer::start(&database_url()).await;
    for (path, field) in [
        ("/api/v1/forums/topics?limit=0", "limit"),
        ("/api/v1/forums/topics?limit=101", "limit"),
        ("/api/v1/forums/topics?limit=abc", "query"),
        ("/api/v1/forums/topics?category=abc", "query"),
        ("/api/v1/forums/topics?cursor=garbage", "cursor"),
        ("/api/v1/forums/topics/abc/replies", "id"),
        ("/api/v1/forums/topics/1/replies?depth=0", "depth"),
        ("/api/v1/forums/topics/1/replies?limit=10001", "limit"),
        ("/api/v1/forums/topics/1/replies?limit=501", "limit"),
        ("/api/v1/forums/topics/1/replies?after=-5", "after"),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_invalid(&body, field);
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn reply_trees_are_bounded_and_continue_after_the_last_item() {
    let server = TestServer::start(&database_url()).await;
    let chain = Shape::of(Scale::Small).hot_topics.len() + 1;
    let (status, body) = get(&server, &format!("/api/v1/forums/topics/{chain}/replies")).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 10);
    assert_eq!(items[9]["children_cut"], true);
    assert_eq!(body["has_more"], false);

    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/forums/topics/1/replies?limit=250&after={a}"),
            None => "/api/v1/forums/topics/1/replies?limit=250".to_owned(),
        };
        let (status, body) = get(&server, &path).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().expect("items");
        seen.extend(items.iter().map(|i| i["id"].as_i64().expect("id")));
        if body["has_more"] != true {
            break;
        }
        after = items.last().and_then(|i| i["id"].as_i64());
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no item twice across pages");
    assert!(seen.len() > 250, "more than one page");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn missing_topics_and_foreign_continuations_are_refused() {
    let server = TestServer::start(&database_url()).await;
    let (status, body) = get(&server, "/api/v1/forums/topics/999999/replies").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let client = connect(&database_url()).await;
    let foreign: i64 = client
        .query_one("SELECT id FROM forum_replies WHERE topic_id <> 1 LIMIT 1", &[])
        .await
        .expect("a reply")
        .get(0);
    let (status, body) = get(&server, &format!("/api/v1/forums/topics/1/replies?after={foreign}")).await;
    assert_eq!(status, 400, "{body}");
    assert_invalid(&body, "after");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn reads_answer_503_when_the_database_is_down() {
    let url = format!("postgres://veritable@127.0.0.1:{}/veritable_test", closed_port().await);
    // Direct even in the pgbouncer suite: the point is the closed port.
    let db = veritable_proxy::config::DbConfig::from_url(&url).expect("url");
    let server = TestServer::start_with(veritable_proxy::config::ServeConfig::for_tests(db)).await;
    let response = reqwest::get(server.url("/api/v1/forums/topics")).await.expect("request");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "database_unavailable");
    server.stop().await.expect("stop");
}

/// The seed report's proof of concept (20 concurrent `GET /forums/topics`)
/// and the same with 2,000 at once, with the production defaults (pool of
/// 16 with a 2 s wait, 1 s read cache): every request answers 200.
#[tokio::test]
async fn twenty_and_two_thousand_concurrent_topic_reads_all_succeed() {
    veritable_proxy::server::raise_open_files_limit();
    let mut config = veritable_tests::serve_config(&database_url());
    config.read_cache_ms = 1000;
    let server = TestServer::start_with(config).await;
    for concurrent in [20, 2_000] {
        let url = server.url("/api/v1/forums/topics");
        let requests = (0..concurrent).map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // A connection each: no client-side pooling hides the concurrency.
                let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
                client.get(url).send().await.map(|r| r.status().as_u16())
            })
        });
        let mut statuses = std::collections::BTreeMap::new();
        for request in requests.collect::<Vec<_>>() {
            let status = request.await.expect("task").map_or(0, |s| s);
            *statuses.entry(status).or_insert(0) += 1;
        }
        assert_eq!(statuses, std::collections::BTreeMap::from([(200, concurrent)]), "{concurrent} at once");
    }
    server.stop().await.expect("stop");
}

/// The read cache answers repeated list requests from memory, counts hits,
/// keys by validated parameters, and serves a change after its TTL.
#[tokio::test]
async fn topic_lists_are_cached_briefly_and_bounded() {
    let (db, client) = veritable_tests::FreshDb::seeded("api_read_cache", &Shape::of(Scale::Small), 13).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.read_cache_ms = 300;
    config.read_cache_bytes = 64 * 1024;
    let server = TestServer::start_with(config).await;
    let (_, first) = get(&server, "/api/v1/forums/topics?limit=5").await;
    client
        .execute(
            "UPDATE forum_topics SET title = 'renamed while cached' WHERE id = $1",
            &[&first["items"][0]["id"].as_i64().expect("id")],
        )
        .await
        .expect("rename");
    let (_, again) = get(&server, "/api/v1/forums/topics?limit=5").await;
    assert_eq!(again, first, "served from the cache within the TTL");
    veritable_tests::until("the cached page expired", || async {
        get(&server, "/api/v1/forums/topics?limit=5").await.1["items"][0]["title"] == "renamed while cached"
    })
    .await;
    // Many distinct keys: the cache stays within its byte bound.
    let mut cursor = None::<String>;
    for _ in 0..40 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/forums/topics?limit=20&cursor={c}"),
            None => "/api/v1/forums/topics?limit=20".to_owned(),
        };
        let (status, page) = get(&server, &path).await;
        assert_eq!(status, 200);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let metrics = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert!(value("veritable_response_cache_hits_total") >= 1.0);
    assert!(value("veritable_response_cache_bytes") <= 64.0 * 1024.0 * 1.1, "within its bound");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A seeded database named `name` and a proxy on it whose read cache keeps
/// entries a minute and drops lists at most every `refresh_ms`, with room to
/// post 1,000 replies a minute.
async fn posting_with_cached_lists(
    name: &str,
    refresh_ms: u64,
) -> (veritable_tests::FreshDb, tokio_postgres::Client, TestServer) {
    let (db, client) = veritable_tests::FreshDb::seeded(name, &Shape::of(Scale::Small), 14).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.read_cache_ms = 60_000;
    config.read_cache_refresh_ms = refresh_ms;
    config.posts_per_minute = 1000;
    let server = TestServer::start_with(config).await;
    (db, client, server)
}

/// Under writes, cached lists are refreshed at most every
/// `read_cache_refresh_ms` (not dropped on every event), yet a writer's own
/// next read shows their post at once, and everyone's within the bound.
#[tokio::test]
async fn a_writer_sees_their_post_in_cached_lists_at_once_and_others_soon() {
    let (db, client, server) = posting_with_cached_lists("api_read_cache_writes", 250).await;
    let writer = Api::signed_in(&server, "demo").await;
    let other = Api::signed_in(&server, "moderator").await;
    let path = "/api/v1/forums/topics?category=1&limit=10";
    let (_, page) = get(&server, path).await;
    let topic = page["items"][0]["id"].as_i64().expect("a topic");
    let before = listed_reply_count(&page, topic).expect("its count");
    let (_, cached) = other.get(path).await;
    assert_eq!(listed_reply_count(&cached, topic), Some(before), "cached for everyone");

    let (status, _) = writer
        .call("POST", &format!("/api/v1/forums/topics/{topic}/replies"), Some(serde_json::json!({ "body": "mine" })))
        .await;
    assert_eq!(status, 201);
    let (_, own) = writer.get(path).await;
    assert_eq!(listed_reply_count(&own, topic), Some(before + 1), "the writer's next read shows the post");

    // A burst of posts by someone else: the lists catch up within the bound.
    for i in 0..20 {
        other.reply(topic, &format!("burst {i}")).await;
    }
    let stored = stored_reply_count(&client, topic).await;
    assert_eq!(stored, before + 21);
    veritable_tests::until("an anonymous reader's cached list shows the burst", || async {
        listed_reply_count(&get(&server, path).await.1, topic) == Some(stored)
    })
    .await;
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A writer who posts in one category and then in another reads the first
/// category's list with their first post in it, though lists are dropped at
/// most once a minute here and that list was cached before either post (the
/// cache once kept only a session's last write, so this read was served the
/// list from before the first post).
#[tokio::test]
async fn a_writer_sees_each_of_their_posts_not_only_the_last() {
    let (db, client, server) = posting_with_cached_lists("api_read_cache_each_write", 60_000).await;
    let (writer, other) = (Api::signed_in(&server, "demo").await, Api::signed_in(&server, "moderator").await);
    let first_topic = |page: &Value| page["items"][0]["id"].as_i64().expect("a topic");
    let (one, two) = ("/api/v1/forums/topics?category=1&limit=10", "/api/v1/forums/topics?category=2&limit=10");
    let (mine, elsewhere) = (first_topic(&get(&server, one).await.1), first_topic(&get(&server, two).await.1));

    // The first change after a quiet spell drops the lists at once; the
    // changes after it wait for the next drop, a minute on.
    other.reply(elsewhere, "the first change").await;
    let after_first = stored_reply_count(&client, elsewhere).await;
    veritable_tests::until("the first change's drop", || async {
        listed_reply_count(&get(&server, two).await.1, elsewhere) == Some(after_first)
    })
    .await;
    let cached = get(&server, one).await.1;
    let before = listed_reply_count(&cached, mine).expect("the topic is listed");

    writer.reply(mine, "in category 1").await;
    writer.reply(elsewhere, "then in category 2").await;
    let stored = stored_reply_count(&client, mine).await;
    assert_ne!(stored, before);
    assert_eq!(listed_reply_count(&get(&server, one).await.1, mine), Some(before), "others are served the cached list");
    let (_, own) = writer.get(one).await;
    assert_eq!(listed_reply_count(&own, mine), Some(stored), "the writer's read shows their first post too");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A writer's read shows their write even when the write's event reaches the
/// proxy later than the lists' refresh interval (here the sequencer is held,
/// so no event comes at all): the write is tracked for the refresh plus the
/// event's way (the cache once tracked it for the refresh alone, and this
/// read was served the list from before the post).
#[tokio::test]
async fn a_writer_sees_their_post_though_its_event_is_late() {
    let (db, client, server) = posting_with_cached_lists("api_read_cache_late_event", 100).await;
    let writer = Api::signed_in(&server, "demo").await;
    let path = "/api/v1/forums/topics?category=1&limit=10";
    let (_, page) = get(&server, path).await;
    let topic = page["items"][0]["id"].as_i64().expect("a topic");
    let before = listed_reply_count(&page, topic).expect("its count");

    let sequencer = connect(&db.url).await;
    sequencer.execute("SELECT pg_advisory_lock(hashtext('veritable.sequence_events'))", &[]).await.expect("hold");
    writer.reply(topic, "while no event goes out").await;
    let stored = stored_reply_count(&client, topic).await;
    // Past the refresh interval: time itself is the condition here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, cached) = get(&server, path).await;
    assert_eq!(listed_reply_count(&cached, topic), Some(before), "no event came: others are served the cache");
    let (_, own) = writer.get(path).await;
    assert_eq!(listed_reply_count(&own, topic), Some(stored), "the writer's read shows their post");

    sequencer.execute("SELECT pg_advisory_unlock(hashtext('veritable.sequence_events'))", &[]).await.expect("let go");
    veritable_tests::until("the event drops the lists for everyone", || async {
        listed_reply_count(&get(&server, path).await.1, topic) == Some(stored)
    })
    .await;
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Writers reading a list their posts changed share one load, as other
/// misses do: with the list's query held by a table lock, eight sessions that
/// have just posted read the list at once; one load runs, and each reader is
/// answered by it with every post in it.
#[tokio::test]
async fn writers_reading_a_list_they_changed_share_one_load() {
    let (db, client, server) = posting_with_cached_lists("api_read_cache_writers", 60_000).await;
    let path = "/api/v1/forums/topics?category=1&limit=10";
    let (_, page) = get(&server, path).await;
    let topic = page["items"][0]["id"].as_i64().expect("a topic");
    let mut writers = Vec::new();
    for n in 0..8 {
        let writer = Api::signed_in(&server, "demo").await;
        writer.reply(topic, &format!("writer {n}")).await;
        writers.push(writer);
    }
    let stored = stored_reply_count(&client, topic).await;

    let mut blocker = connect(&db.url).await;
    let lock = blocker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE forum_topic_stats IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let metric = |name: &'static str| veritable_tests::metrics::metric(&server, name);
    let (misses, loads) =
        (metric("veritable_response_cache_misses_total").await, metric("veritable_response_cache_loads_total").await);
    let reads: Vec<_> = writers
        .into_iter()
        .map(|writer| tokio::spawn(async move { writer.get("/api/v1/forums/topics?category=1&limit=10").await }))
        .collect();
    veritable_tests::metrics::eventually_metric(&server, "veritable_response_cache_misses_total", misses + 8.0).await;
    veritable_tests::until("the one load waits for the lock", || async {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock' AND backend_type = 'client backend'
                    AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("q")
            .get(0);
        waiting == 1
    })
    .await;
    lock.rollback().await.expect("release");
    for read in reads {
        let (status, page) = read.await.expect("a read");
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            listed_reply_count(&page, topic),
            Some(stored),
            "each writer's read shows every post made before it"
        );
    }
    assert_eq!(metric("veritable_response_cache_loads_total").await, loads + 1.0, "one load for the eight writers");
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// The topic with the most replies in the test database.
async fn busiest_topic() -> i64 {
    connect(&database_url())
        .await
        .query_one("SELECT topic_id FROM forum_topic_stats ORDER BY reply_count DESC LIMIT 1", &[])
        .await
        .expect("the busiest topic")
        .get(0)
}

/// The read cache's bytes (its weigher's count) from `/metrics`.
async fn cache_bytes(server: &TestServer) -> f64 {
    veritable_tests::metrics::metric(server, "veritable_response_cache_bytes").await
}

/// Trees of a topic at every depth and size (adversarial keys), in a cache
/// smaller than some of them: the cache stays within its byte bound.
#[tokio::test]
async fn cached_reply_trees_stay_within_the_caches_byte_bound() {
    let mut config = veritable_tests::serve_config(&database_url());
    config.read_cache_ms = 60_000;
    config.read_cache_bytes = 64 * 1024;
    let server = TestServer::start_with(config).await;
    let topic = busiest_topic().await;
    let mut largest = 0;
    for depth in 1..=12 {
        for limit in [1, 50, 500] {
            let (status, tree) =
                get(&server, &format!("/api/v1/forums/topics/{topic}/replies?depth={depth}&limit={limit}")).await;
            assert_eq!(status, 200, "{tree}");
            largest = largest.max(tree.to_string().len());
        }
    }
    let bytes = cache_bytes(&server).await;
    assert!(bytes <= 64.0 * 1024.0 * 1.1, "{bytes} bytes held, bound 64 KiB (largest tree {largest} bytes)");
    server.stop().await.expect("stop");
}

/// A GET with `Accept-Encoding: encoding`: the status, `Content-Encoding`,
/// `Vary` and the body decoded.
pub(crate) async fn get_encoded(
    server: &TestServer,
    path: &str,
    encoding: &str,
) -> (u16, Option<String>, Option<String>, String) {
    use std::io::Read;
    let response = reqwest::Client::new()
        .get(server.url(path))
        .header("accept-encoding", encoding)
        .send()
        .await
        .expect("the proxy answers");
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content_encoding, vary) = (header("content-encoding"), header("vary"));
    let bytes = response.bytes().await.expect("a body");
    let mut text = String::new();
    match content_encoding.as_deref() {
        Some("gzip") => flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).map(drop),
        Some("br") => brotli::Decompressor::new(&bytes[..], 4096).read_to_string(&mut text).map(drop),
        _ => String::from_utf8(bytes.to_vec()).map(|t| text = t).map_err(std::io::Error::other),
    }
    .expect("a body in its encoding");
    (status, content_encoding, vary, text)
}

/// Cached reads are compressed once per encoding, at the first request for
/// it, and held with the entry (which is weighed again with it, so the byte
/// bound counts what is held) and served in the one the client prefers;
/// uncached answers are compressed per request.
#[tokio::test]
async fn cached_trees_are_served_in_the_encoding_asked_for_and_held_encoded() {
    let mut config = veritable_tests::serve_config(&database_url());
    config.read_cache_ms = 60_000;
    let server = TestServer::start_with(config).await;
    let topic = busiest_topic().await;
    let path = format!("/api/v1/forums/topics/{topic}/replies?depth=6&limit=200");
    let empty = cache_bytes(&server).await;
    let (status, encoding, vary, plain) = get_encoded(&server, &path, "identity").await;
    assert_eq!((status, encoding, vary.as_deref()), (200, None, Some("accept-encoding")));
    assert!(plain.len() > 10_000, "a large tree: {} bytes", plain.len());
    let json = plain.len() as f64;
    let held = cache_bytes(&server).await - empty;
    assert!(held >= json && held <= json + 1024.0, "the JSON alone until an encoding is asked for: {held} for {json}");
    for (accept, expected) in [("gzip, deflate, br", "br"), ("gzip", "gzip"), ("br;q=0.1, gzip", "gzip")] {
        let (status, encoding, _, text) = get_encoded(&server, &path, accept).await;
        assert_eq!(status, 200);
        assert_eq!(encoding.as_deref(), Some(expected), "Accept-Encoding: {accept}");
        assert_eq!(text, plain, "the {expected} body is the same JSON");
    }
    let encoded = cache_bytes(&server).await - empty;
    assert!(
        encoded > held && encoded < held + json,
        "weighed again with its two encodings, each smaller than the JSON: {encoded}, {held} before"
    );
    for accept in ["br", "gzip", "identity"] {
        assert_eq!(get_encoded(&server, &path, accept).await.3, plain);
    }
    assert_eq!(cache_bytes(&server).await - empty, encoded, "served from the one entry, encoded once");
    // A continuation is not cached: the compression layer encodes it.
    let first: Value = serde_json::from_str(&plain).expect("JSON");
    let after = first["items"][0]["id"].as_i64().expect("an item");
    let (status, encoding, _, text) =
        get_encoded(&server, &format!("/api/v1/forums/topics/{topic}/replies?depth=6&limit=200&after={after}"), "gzip")
            .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(encoding.as_deref(), Some("gzip"));
    serde_json::from_str::<Value>(&text).expect("a continuation decodes to JSON");
    server.stop().await.expect("stop");
}
