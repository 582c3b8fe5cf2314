//! Events: delivery in order, resume with `since` across proxies, commit-order safety, and other proxies' caches invalidated by them.

use serde_json::json;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::api::listed_reply_count;
use veritable_tests::metrics::metric;
use veritable_tests::ws::{events_in_order, next, open, subscribe};
use veritable_tests::{Api, FreshDb, TestServer, until};

use super::server_config;

#[tokio::test]
async fn events_arrive_in_order_and_resume_with_since_across_proxies() {
    let (db, client) = FreshDb::seeded("rt_resume", &Shape::of(Scale::Small), 21).await;
    let a = TestServer::start_with(server_config(&db.url)).await;
    let b = TestServer::start_with(server_config(&db.url)).await;
    let writer = Api::signed_in(&b, "demo").await;

    // Live: a client on A sees replies posted through B, in order.
    let mut socket = open(&a, None, None).await.expect("connect");
    let frames = subscribe(&mut socket, "topic:5", None).await;
    assert!(frames.iter().any(|f| f["type"] == "subscribed"), "{frames:?}");
    let mut posted = Vec::new();
    for i in 0..3 {
        posted.push(writer.reply(5, &format!("live {i}")).await);
    }
    let mut last_seq = 0;
    let mut first_seq = 0;
    for id in &posted {
        let event = next(&mut socket).await;
        assert_eq!(
            (event["type"].as_str(), event["room"].as_str(), event["kind"].as_str()),
            (Some("event"), Some("topic:5"), Some("reply.created")),
            "{event}"
        );
        assert_eq!(event["data"]["id"], *id);
        let seq = event["id"].as_i64().expect("seq");
        assert!(seq > last_seq, "in order");
        if first_seq == 0 {
            first_seq = seq;
        }
        last_seq = seq;
    }
    drop(socket);

    // Missed while away, and proxy A stopped: resume on B from the last seq.
    a.stop().await.expect("stop A");
    let missed = [writer.reply(5, "missed 1").await, writer.reply(5, "missed 2").await];
    writer.reply(6, "another room").await;
    let mut socket = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut socket, "topic:5", Some(last_seq)).await;
    // From the backlog, or live if B had not read them yet when we subscribed.
    let mut replayed: Vec<i64> =
        frames.iter().filter(|f| f["type"] == "event").filter_map(|f| f["data"]["id"].as_i64()).collect();
    while replayed.len() < missed.len() {
        replayed.extend(next(&mut socket).await["data"]["id"].as_i64());
    }
    assert_eq!(replayed, missed, "the missed events, once each, in order: {frames:?}");
    let live = writer.reply(5, "after the seam").await;
    let event = next(&mut socket).await;
    assert_eq!(event["data"]["id"], live, "no duplicate or gap at the seam: {event}");
    let live_seq = event["id"].as_i64().expect("seq");

    // A backlog from B's database read: everything after the first event, in order.
    let mut again = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut again, "topic:5", Some(first_seq)).await;
    let backlog: Vec<i64> =
        frames.iter().filter(|f| f["type"] == "event").filter_map(|f| f["data"]["id"].as_i64()).collect();
    assert_eq!(backlog, [posted[1], posted[2], missed[0], missed[1], live], "{frames:?}");
    let subscribed = frames.iter().find(|f| f["type"] == "subscribed").expect("subscribed");
    assert!(subscribed["cursor"].as_i64() >= Some(live_seq));

    // A burst of 1,001 events in one transaction: the subscribed socket's
    // queue holds 256, so what does not fit is read back from the outbox.
    // Every event arrives, once, in order, and the socket stays open.
    let routed = metric(&b, "veritable_ws_events_routed_total").await;
    client
        .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 5, 3, 'flood ' || g FROM generate_series(1, 1001) g")
        .await
        .expect("1,001 replies");
    events_in_order(&mut socket, 1001).await;
    assert!(metric(&b, "veritable_ws_catch_ups_total").await >= 1.0, "it caught up from the outbox");
    assert_eq!(metric(&b, "veritable_ws_slow_consumer_closes_total").await, 0.0, "a burst closes no one");
    until("B routed the burst", || async { metric(&b, "veritable_ws_events_routed_total").await >= routed + 1001.0 })
        .await;

    // Resuming from before the burst replays all of it: the backlog is
    // bounded by bytes (4 MiB) and age (10 minutes), not by a count.
    let mut behind = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut behind, "topic:5", Some(live_seq)).await;
    assert_eq!(frames.iter().filter(|f| f["type"] == "event").count(), 1001);
    assert!(frames.iter().all(|f| f["type"] != "resync"), "no resync");
    // Older than 10 minutes: resync.
    client
        .execute("UPDATE events SET created_at = created_at - interval '11 minutes' WHERE room = 'topic:5'", &[])
        .await
        .expect("age the room's events");
    let mut stale = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut stale, "topic:5", Some(live_seq)).await;
    assert_eq!(frames[0]["type"], "resync", "{frames:?}");
    assert_eq!(frames[1]["type"], "subscribed", "{frames:?}");
    // More than 4 MiB of a room's frames (30,000 events of ~150 bytes): resync.
    let before: i64 = client
        .query_one("SELECT coalesce(max(seq), 0) FROM events WHERE seq IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    let routed = metric(&b, "veritable_ws_events_routed_total").await;
    client
        .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 6, 3, 'deep ' || g FROM generate_series(1, 30000) g")
        .await
        .expect("30,000 replies");
    until("B routed them", || async { metric(&b, "veritable_ws_events_routed_total").await >= routed + 30_000.0 })
        .await;
    let mut deep = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut deep, "topic:6", Some(before)).await;
    assert_eq!(frames[0]["type"], "resync", "over the byte bound: {:?}", &frames[..1]);
    b.stop().await.expect("stop B");
    db.drop_db().await;
}

/// A transaction that commits late with a lower xid is delivered, before
/// the later one it waited behind.
#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let (db, mut client) = FreshDb::seeded("rt_commit_order", &Shape::of(Scale::Small), 22).await;
    let server = TestServer::start_with(server_config(&db.url)).await;
    let mut socket = open(&server, None, None).await.expect("connect");
    subscribe(&mut socket, "topic:7", None).await;
    subscribe(&mut socket, "topic:8", None).await;
    // Two writers on different topics (so neither waits for the other's row locks).
    let insert = "INSERT INTO forum_replies (topic_id, author_id, body) VALUES ($1, 3, $2) RETURNING id";
    let slow = client.transaction().await.expect("begin");
    let early: i64 = slow.query_one(insert, &[&7_i64, &"slow writer"]).await.expect("insert").get(0);
    let other = veritable_tests::connect(&db.url).await;
    let late: i64 = other.query_one(insert, &[&8_i64, &"fast writer"]).await.expect("insert").get(0);
    // The fast writer has committed, but the slow one (older xid) is open:
    // the sequencer stamps nothing yet, rather than stamping the fast one first.
    let stamped: Option<i64> =
        other.query_one("SELECT veritable.sequence_events()", &[]).await.expect("sequence").get(0);
    assert_eq!(stamped, None, "nothing is stamped while an older writer is open");
    slow.commit().await.expect("commit");
    let first = next(&mut socket).await;
    let second = next(&mut socket).await;
    assert_eq!(
        (first["data"]["id"].as_i64(), second["data"]["id"].as_i64()),
        (Some(early), Some(late)),
        "{first} {second}"
    );
    assert!(second["id"].as_i64() > first["id"].as_i64());
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// With long cache lifetimes, the event stream still makes a logout on A
/// hold on B, and a reply or a wiki revision through A shows in B's cached
/// topic list or wiki page, long before the caches would expire; a list
/// change leaves B's cached wiki page alone.
#[tokio::test]
async fn events_invalidate_other_proxies_caches() {
    let (db, _client) = FreshDb::seeded("rt_invalidate", &Shape::of(Scale::Small), 27).await;
    let mut config = server_config(&db.url);
    config.session_cache_ms = 60_000;
    config.read_cache_ms = 60_000;
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let on_a = Api::signed_in(&a, "demo").await;
    let mut on_b = Api::new(&b);
    on_b.token = on_a.token.clone();
    assert_eq!(on_b.get("/api/v1/me").await.0, 200, "cached on B now");

    // A wiki page, written before the replies below.
    let path = "/api/v1/wiki/pages/cached-page";
    let first = json!({ "title": "Cached", "body": "first", "base_revision": 0 });
    assert_eq!(on_a.call("PUT", path, Some(first)).await.0, 201);
    assert_eq!(on_b.get(path).await.1["current_revision"], 1, "cached on B now");

    let (_, before) = on_b.get("/api/v1/forums/topics?limit=3").await;
    // A topic not on the first page: a reply bumps it to the top.
    let (_, page) = on_b.get("/api/v1/forums/topics?limit=100").await;
    let bumped = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .rev()
        .find(|t| t["is_pinned"] == false)
        .expect("an unpinned topic")["id"]
        .as_i64()
        .expect("id");
    assert_ne!(before["items"][0]["id"], bumped);
    on_a.reply(bumped, "bump").await;
    until("B's cached list shows the bump", || async {
        let (_, now) = on_b.get("/api/v1/forums/topics?limit=3").await;
        now["items"].as_array().expect("items").iter().any(|t| t["id"] == bumped)
    })
    .await;

    // Every event so far has reached B (the revision's came before the
    // reply's): the page cached now stays through the next list change.
    assert_eq!(on_b.get(path).await.1["current_revision"], 1);
    let replies = |list: serde_json::Value| listed_reply_count(&list, bumped);
    let counted = replies(on_b.get("/api/v1/forums/topics?limit=3").await.1).expect("the bumped topic is listed");
    on_a.reply(bumped, "again").await;
    until("B's cached list shows the second reply", || async {
        replies(on_b.get("/api/v1/forums/topics?limit=3").await.1).is_some_and(|now| now != counted)
    })
    .await;
    let loads = metric(&b, "veritable_response_cache_loads_total").await;
    assert_eq!(on_b.get(path).await.1["current_revision"], 1);
    assert_eq!(
        metric(&b, "veritable_response_cache_loads_total").await,
        loads,
        "the lists were dropped, the wiki page was not"
    );

    // A new revision through A replaces the page on B.
    let (status, _) =
        on_a.call("PUT", path, Some(json!({ "title": "Cached", "body": "second", "base_revision": 1 }))).await;
    assert_eq!(status, 200);
    assert_eq!(on_a.get(path).await.1["current_revision"], 2, "the writer's proxy forgets its copy at once");
    until("B's cached wiki page shows revision 2", || async { on_b.get(path).await.1["current_revision"] == 2 }).await;

    assert_eq!(on_a.call("POST", "/api/v1/auth/logout", None).await.0, 204);
    until("B refuses the revoked session", || async { on_b.get("/api/v1/me").await.0 == 401 }).await;
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}

/// The first page of a topic's reply tree is cached on every proxy and kept
/// true by the topic's events: a reply posted through A shows in B's cached
/// tree within the refresh bound (long before the cache would expire), its
/// author sees it on A at once, and once deleted it is gone from B's tree.
#[tokio::test]
async fn a_topics_cached_tree_follows_its_replies_on_every_proxy() {
    let (db, _client) = FreshDb::seeded("rt_tree_cache", &Shape::of(Scale::Small), 28).await;
    let mut config = server_config(&db.url);
    config.read_cache_ms = 60_000;
    config.read_cache_refresh_ms = 250;
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let writer = Api::signed_in(&a, "demo").await;
    let reader = Api::new(&b);
    let topic = 10;
    let path = format!("/api/v1/forums/topics/{topic}/replies?limit=500");
    let shows = |tree: &serde_json::Value, text: &str| tree.to_string().contains(text);
    let (status, before) = reader.get(&path).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(writer.get(&path).await.0, 200, "cached on A too");
    let hits = metric(&b, "veritable_response_cache_hits_total").await;
    assert_eq!(reader.get(&path).await.1, before, "served from B's cache");
    assert!(metric(&b, "veritable_response_cache_hits_total").await > hits);

    let id = writer.reply(topic, "fresh in the tree").await;
    assert!(shows(&writer.get(&path).await.1, "fresh in the tree"), "the author's next read shows the reply");
    let posted = std::time::Instant::now();
    until("B's cached tree shows the reply", || async { shows(&reader.get(&path).await.1, "fresh in the tree") }).await;
    assert!(posted.elapsed() < std::time::Duration::from_secs(2), "within the refresh bound: {:?}", posted.elapsed());

    let (status, _) = writer.call("DELETE", &format!("/api/v1/forums/replies/{id}"), None).await;
    assert_eq!(status, 204);
    assert!(!shows(&writer.get(&path).await.1, "fresh in the tree"), "the author's next read no longer shows it");
    until("B's cached tree drops the deleted reply", || async {
        !shows(&reader.get(&path).await.1, "fresh in the tree")
    })
    .await;
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}
