//! Realtime over real WebSockets: delivery, order, resume with `since`
//! across proxies, commit-order safety, two-proxy fan-out, refusals, slow
//! consumers, cleanup to empty, listener recovery, shutdown.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{Api, FreshDb, TestServer, until};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(
    server: &TestServer,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/api/v1/ws", server.addr).into_client_request().expect("a request");
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

/// The next JSON text frame (pings are skipped), within 10 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.expect("send");
}

async fn subscribe(socket: &mut Socket, room: &str, since: Option<i64>) -> Vec<Value> {
    send(socket, json!({ "op": "subscribe", "room": room, "since": since })).await;
    let mut frames = Vec::new();
    loop {
        let frame = next(socket).await;
        let subscribed = frame["type"] == "subscribed";
        let done = subscribed || frame["type"] == "error";
        frames.push(frame);
        if subscribed && !room.starts_with("user:") {
            // The presence snapshot follows at once.
            let snapshot = next(socket).await;
            assert_eq!(snapshot["type"], "presence", "{snapshot}");
            frames.push(snapshot);
        }
        if done {
            return frames;
        }
    }
}

/// The close code the server sends next (text frames before it are skipped).
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame within 10 s") {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return 0,
            Some(Ok(_)) => {}
        }
    }
}

async fn reply(api: &Api, topic: i64, body: &str) -> i64 {
    let (status, reply) =
        api.call("POST", &format!("/api/v1/forums/topics/{topic}/replies"), Some(json!({ "body": body }))).await;
    assert_eq!(status, 201, "{reply}");
    reply["id"].as_i64().expect("id")
}

fn server_config(url: &str) -> veritable_proxy::config::ServeConfig {
    let mut config = veritable_tests::serve_config(url);
    config.posts_per_minute = 10_000;
    // The listener reads PostgreSQL directly, even in the pgbouncer suite.
    config.listen_url = Some(url.parse().expect("url"));
    // Most tests read presence on anonymous sockets too (the `subscribe`
    // helper expects the snapshot); the default, off, has its own test.
    config.ws_anonymous_presence = true;
    config
}

async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}"))
}

async fn eventually_metric(server: &TestServer, name: &str, want: f64) {
    until(&format!("{name} = {want}"), || async { (metric(server, name).await - want).abs() < f64::EPSILON }).await;
}

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
        posted.push(reply(&writer, 5, &format!("live {i}")).await);
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
    let missed = [reply(&writer, 5, "missed 1").await, reply(&writer, 5, "missed 2").await];
    reply(&writer, 6, "another room").await;
    let mut socket = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut socket, "topic:5", Some(last_seq)).await;
    // From the backlog, or live if B had not read them yet when we subscribed.
    let mut replayed: Vec<i64> =
        frames.iter().filter(|f| f["type"] == "event").filter_map(|f| f["data"]["id"].as_i64()).collect();
    while replayed.len() < missed.len() {
        replayed.extend(next(&mut socket).await["data"]["id"].as_i64());
    }
    assert_eq!(replayed, missed, "the missed events, once each, in order: {frames:?}");
    let live = reply(&writer, 5, "after the seam").await;
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

    // A burst of 1,001 events in one transaction: the subscribed socket cannot
    // take them (its queue holds 256) and is closed with 1013; resuming from
    // before the burst is further behind than the backlog holds: resync.
    let routed = metric(&b, "veritable_ws_events_routed_total").await;
    client
        .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 5, 3, 'flood ' || g FROM generate_series(1, 1001) g")
        .await
        .expect("1,001 replies");
    assert_eq!(close_code(&mut socket).await, 1013);
    until("B routed the burst", || async { metric(&b, "veritable_ws_events_routed_total").await >= routed + 1001.0 })
        .await;
    let mut behind = open(&b, None, None).await.expect("connect");
    let frames = subscribe(&mut behind, "topic:5", Some(live_seq)).await;
    assert_eq!(frames[0]["type"], "resync", "{frames:?}");
    assert_eq!(frames[1]["type"], "subscribed", "{frames:?}");
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

#[tokio::test]
async fn refusals_are_explicit_and_abuse_closes() {
    let (db, _client) = FreshDb::seeded("rt_refusals", &Shape::of(Scale::Small), 23).await;
    let server = TestServer::start_with(server_config(&db.url)).await;
    let demo = Api::signed_in(&server, "demo").await;
    let demo_id = 3;

    // Cross-site WebSocket hijacking: a foreign Origin is refused at the upgrade.
    let refused = open(&server, demo.token.as_deref(), Some("https://evil.example")).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 403),
        "{refused:?}"
    );
    let same_host = format!("http://{}", server.addr);
    open(&server, None, Some(&same_host)).await.expect("the proxy's own origin is fine");
    let other_scheme = open(&server, None, Some(&format!("https://{}", server.addr))).await;
    assert!(
        matches!(other_scheme, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 403),
        "scheme counts: {other_scheme:?}"
    );
    assert!(open(&server, Some("0123"), None).await.is_err(), "a bad token is 401, not anonymous");

    let mut anonymous = open(&server, None, None).await.expect("connect");
    let frames = subscribe(&mut anonymous, &format!("user:{demo_id}"), None).await;
    assert_eq!(frames[0]["code"], "forbidden", "{frames:?}");
    assert_eq!(subscribe(&mut anonymous, "topic:99999999", None).await[0]["code"], "not_found");
    assert_eq!(subscribe(&mut anonymous, "nonsense", None).await[0]["code"], "bad_room");
    send(&mut anonymous, json!({ "op": "dance" })).await;
    assert_eq!(next(&mut anonymous).await["code"], "bad_frame");
    anonymous.send(Message::Text("{not json".into())).await.expect("send");
    assert_eq!(next(&mut anonymous).await["code"], "bad_frame");
    send(&mut anonymous, json!({ "op": "ping" })).await;
    assert_eq!(next(&mut anonymous).await["type"], "pong");

    let mut signed_in = open(&server, demo.token.as_deref(), None).await.expect("connect");
    let frames = subscribe(&mut signed_in, &format!("user:{demo_id}"), None).await;
    assert_eq!(frames[0]["type"], "subscribed", "one's own notifications: {frames:?}");

    // Repeated abuse closes with 1008.
    for _ in 0..30 {
        if anonymous.send(Message::Text("x".into())).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut anonymous).await, 1008);

    // An oversized frame closes the connection.
    let mut big = open(&server, None, None).await.expect("connect");
    let _ = big.send(Message::Text("x".repeat(64 * 1024).into())).await;
    assert_ne!(close_code(&mut big).await, 1000);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// A client that cannot keep up is closed with 1013 rather than buffered
/// for; connections and rooms come back to empty however clients leave.
#[tokio::test]
async fn slow_consumers_are_closed_and_everything_is_cleaned_up() {
    let (db, client) = FreshDb::seeded("rt_cleanup", &Shape::of(Scale::Small), 24).await;
    let mut config = server_config(&db.url);
    config.ws_queue = 2;
    let server = TestServer::start_with(config).await;

    let mut slow = open(&server, None, None).await.expect("connect");
    subscribe(&mut slow, "topic:8", None).await;
    client
        .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 8, 3, 'burst ' || g FROM generate_series(1, 50) g")
        .await
        .expect("a burst of 50 in one transaction");
    assert_eq!(close_code(&mut slow).await, 1013);
    assert!(metric(&server, "veritable_ws_slow_consumer_closes_total").await >= 1.0);

    // 60 clients in 2 rooms each: half close cleanly, half drop the TCP
    // connection without a close frame.
    let mut sockets = Vec::new();
    for i in 0..60 {
        let mut socket = open(&server, None, None).await.expect("connect");
        subscribe(&mut socket, &format!("topic:{}", 1 + i % 5), None).await;
        subscribe(&mut socket, "category:1", None).await;
        sockets.push(socket);
    }
    assert_eq!(metric(&server, "veritable_ws_connections").await, 60.0);
    assert_eq!(metric(&server, "veritable_ws_subscriptions").await, 120.0);
    for (i, mut socket) in sockets.into_iter().enumerate() {
        match i % 2 {
            0 => socket.close(None).await.expect("close"),
            _ => drop(socket), // abrupt: no close frame
        }
    }
    for name in
        ["veritable_ws_connections", "veritable_ws_rooms", "veritable_ws_subscriptions", "veritable_ws_tracked_clients"]
    {
        eventually_metric(&server, name, 0.0).await;
    }
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// Server pings: a client that answers them (as every WebSocket library
/// does while it reads) stays; one that never answers is closed after two
/// unanswered pings, and its resources go with it.
#[tokio::test]
async fn heartbeats_keep_answering_clients_and_close_silent_ones() {
    let (db, _client) = FreshDb::migrated("rt_heartbeat").await;
    let mut config = server_config(&db.url);
    config.ws_ping_secs = 1;
    let server = TestServer::start_with(config).await;
    let mut answering = open(&server, None, None).await.expect("connect");
    let silent = open(&server, None, None).await.expect("connect"); // never read, so never answers
    assert_eq!(metric(&server, "veritable_ws_connections").await, 2.0);

    let mut pings = 0;
    while pings < 4 {
        match tokio::time::timeout(Duration::from_secs(10), answering.next()).await.expect("a ping within 10 s") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    eventually_metric(&server, "veritable_ws_heartbeat_closes_total", 1.0).await;
    eventually_metric(&server, "veritable_ws_connections", 1.0).await;
    eventually_metric(&server, "veritable_ws_tracked_clients", 1.0).await;
    send(&mut answering, json!({ "op": "ping" })).await;
    assert_eq!(next(&mut answering).await["type"], "pong", "the answering client is still served after four pings");
    drop(silent);
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// `pg_terminate_backend` of the LISTEN connection: the listener reconnects,
/// catches up, and the subscriber misses nothing.
#[tokio::test]
async fn the_listener_recovers_and_shutdown_says_1001() {
    let (db, client) = FreshDb::seeded("rt_listener", &Shape::of(Scale::Small), 25).await;
    let server = TestServer::start_with(server_config(&db.url)).await;
    let writer = Api::signed_in(&server, "demo").await;
    let mut socket = open(&server, None, None).await.expect("connect");
    subscribe(&mut socket, "topic:9", None).await;
    let before = reply(&writer, 9, "before").await;
    assert_eq!(next(&mut socket).await["data"]["id"], before);

    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'veritable-listener' AND datname = current_database()",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "one listener connection per proxy");
    let during = reply(&writer, 9, "while the listener was down").await;
    assert_eq!(next(&mut socket).await["data"]["id"], during);
    assert!(metric(&server, "veritable_ws_listener_reconnects_total").await >= 1.0);

    let stopping = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut socket).await, 1001, "going away");
    stopping.await.expect("task").expect("stop");
    db.drop_db().await;
}

/// The next frame of `kind` (others skipped), within 10 s.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// A room's members as a client sees them: a snapshot (`users`), then changes (`joined`, `left`).
#[derive(Default)]
struct Members(std::collections::BTreeMap<i64, String>);

impl Members {
    fn apply(&mut self, frame: &Value) {
        let listed = |key: &str| frame[key].as_array().cloned().unwrap_or_default();
        let entry = |u: &Value| (u["id"].as_i64().expect("id"), u["username"].as_str().expect("username").to_owned());
        if frame.get("users").is_some() {
            self.0 = listed("users").iter().map(entry).collect();
        } else {
            assert!(frame.get("joined").is_some() && frame.get("left").is_some(), "a snapshot or a change: {frame}");
            listed("joined").iter().map(entry).for_each(|(id, name)| drop(self.0.insert(id, name)));
            listed("left").iter().for_each(|u| drop(self.0.remove(&entry(u).0)));
        }
    }

    fn usernames(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.values().cloned().collect();
        names.sort();
        names
    }

    /// Reads presence frames until the room holds exactly `want`.
    async fn until(&mut self, socket: &mut Socket, want: &[&str]) {
        while self.usernames() != want {
            let frame = next_of(socket, "presence").await;
            self.apply(&frame);
        }
    }
}

/// Presence is a snapshot on join and then the changes (who joined, who
/// left), the same on both proxies; a user whose proxy died is dropped after the TTL; typing
/// reaches the other proxy's subscribers, coalesced to one per 2 s.
#[tokio::test]
async fn presence_and_typing_cross_proxies() {
    let (db, client) = FreshDb::seeded("rt_presence", &Shape::of(Scale::Small), 26).await;
    let mut config = server_config(&db.url);
    config.presence_ttl_secs = 3;
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let demo = Api::signed_in(&a, "demo").await;
    let moderator = Api::signed_in(&b, "moderator").await;

    let mut on_a = open(&a, demo.token.as_deref(), None).await.expect("connect");
    let (mut seen_a, mut seen_b) = (Members::default(), Members::default());
    let frames = subscribe(&mut on_a, "topic:5", None).await;
    let snapshot = frames.last().expect("frame");
    assert_eq!(snapshot["type"], "presence");
    assert!(snapshot.get("users").is_some(), "a snapshot on join: {snapshot}");
    seen_a.apply(snapshot);
    let mut on_b = open(&b, moderator.token.as_deref(), None).await.expect("connect");
    seen_b.apply(subscribe(&mut on_b, "topic:5", None).await.last().expect("frame"));
    // Both see both, whatever order the frames came in.
    seen_a.until(&mut on_a, &["demo", "moderator"]).await;
    seen_b.until(&mut on_b, &["demo", "moderator"]).await;

    // Typing on A reaches B, once per 2 s however often it is sent.
    for _ in 0..3 {
        send(&mut on_a, json!({ "op": "typing", "room": "topic:5" })).await;
    }
    let typing = next_of(&mut on_b, "typing").await;
    assert_eq!(
        (typing["user"]["username"].as_str(), typing["expires_in_ms"].as_i64()),
        (Some("demo"), Some(5000)),
        "{typing}"
    );
    let marker = reply(&demo, 5, "after typing").await;
    loop {
        let frame = next(&mut on_b).await;
        assert_ne!(frame["type"], "typing", "coalesced: one typing frame within 2 s");
        if frame["type"] == "event" && frame["data"]["id"] == marker {
            break;
        }
    }
    let mut anonymous = open(&a, None, None).await.expect("connect");
    subscribe(&mut anonymous, "topic:5", None).await;
    send(&mut anonymous, json!({ "op": "typing", "room": "topic:5" })).await;
    assert_eq!(next_of(&mut anonymous, "error").await["code"], "unauthorized");
    send(&mut on_a, json!({ "op": "typing", "room": "topic:6" })).await;
    assert_eq!(next_of(&mut on_a, "error").await["code"], "not_subscribed");

    // Leaving: B sees demo go.
    on_a.close(None).await.expect("close");
    let mut last = Value::Null;
    while seen_b.usernames() != ["moderator"] {
        last = next_of(&mut on_b, "presence").await;
        seen_b.apply(&last);
    }
    assert_eq!(last["left"][0]["username"], "demo", "a change, not a snapshot: {last}");

    // A proxy that died without cleaning up: its rows expire after the TTL.
    client
        .batch_execute(
            "INSERT INTO presence (room, user_id, proxy, expires_at) VALUES ('topic:5', 1, 'dead-proxy', now() + interval '1 second');
             SELECT pg_notify('veritable_presence', 'topic:5')",
        )
        .await
        .expect("a dead proxy's row");
    seen_b.until(&mut on_b, &["admin", "moderator"]).await;
    seen_b.until(&mut on_b, &["moderator"]).await;
    a.stop().await.expect("stop A");
    b.stop().await.expect("stop B");
    let left: i64 = client.query_one("SELECT count(*) FROM presence", &[]).await.expect("q").get(0);
    assert_eq!(left, 0, "stopped proxies remove their rows");
    db.drop_db().await;
}

/// With long cache lifetimes, the event stream still makes a logout on A
/// hold on B, and a reply or a wiki revision through A shows in B's cached
/// topic list or wiki page, long before the caches would expire.
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
    reply(&on_a, bumped, "bump").await;
    until("B's cached list shows the bump", || async {
        let (_, now) = on_b.get("/api/v1/forums/topics?limit=3").await;
        now["items"].as_array().expect("items").iter().any(|t| t["id"] == bumped)
    })
    .await;

    // A wiki page cached on B: a new revision through A replaces it there.
    let path = "/api/v1/wiki/pages/cached-page";
    let first = json!({ "title": "Cached", "body": "first", "base_revision": 0 });
    assert_eq!(on_a.call("PUT", path, Some(first)).await.0, 201);
    assert_eq!(on_b.get(path).await.1["current_revision"], 1, "cached on B now");
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

/// The caps: sockets per user and per address (429 at the upgrade), rooms
/// per socket and inbound frame rate (error frames); a role change reaches
/// other proxies' session caches as an event.
#[tokio::test]
async fn caps_hold_and_role_changes_reach_every_proxy() {
    let (db, client) = FreshDb::seeded("rt_caps", &Shape::of(Scale::Small), 28).await;
    let mut config = server_config(&db.url);
    config.ws_per_user = 2;
    config.ws_per_ip = 4;
    config.ws_rooms = 3;
    config.session_cache_ms = 60_000;
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let demo = Api::signed_in(&a, "demo").await;

    let first = open(&a, demo.token.as_deref(), None).await.expect("1st");
    let mut second = open(&a, demo.token.as_deref(), None).await.expect("2nd");
    let third = open(&a, demo.token.as_deref(), None).await;
    assert!(
        matches!(third, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 429),
        "per user: {third:?}"
    );
    let anonymous = [open(&a, None, None).await.expect("3rd"), open(&a, None, None).await.expect("4th")];
    let fifth = open(&a, None, None).await;
    assert!(
        matches!(fifth, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 429),
        "per address: {fifth:?}"
    );
    drop(anonymous);
    drop(first);

    for room in ["topic:1", "topic:2", "topic:3"] {
        subscribe(&mut second, room, None).await;
    }
    // (Presence frames of the three rooms may arrive in between.)
    let frames = subscribe(&mut second, "topic:4", None).await;
    assert!(frames.iter().any(|f| f["code"] == "too_many_rooms"), "{frames:?}");
    // A burst past 40 frames: the excess is refused, the socket stays open.
    for _ in 0..50 {
        send(&mut second, json!({ "op": "ping" })).await;
    }
    let mut refused = 0;
    for _ in 0..50 {
        let frame = next(&mut second).await;
        if frame["code"] == "rate_limited" {
            refused += 1;
        }
    }
    assert!(refused >= 5, "{refused} refused of 50");

    // A role change: B's cached session learns it from the event, not the TTL.
    let mut on_b = Api::new(&b);
    on_b.token = demo.token.clone();
    assert_eq!(on_b.get("/api/v1/me").await.1["role"], "member");
    client.execute("UPDATE users SET role = 'moderator' WHERE username = 'demo'", &[]).await.expect("promote");
    until("B sees the new role", || async { on_b.get("/api/v1/me").await.1["role"] == "moderator" }).await;
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}

/// The browser client (`client/veritable-realtime.js`), run by Node against
/// the real proxy through `tests/js/drive.mjs`: one JSON line per callback.
struct JsClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Every reply id delivered as an event, in arrival order.
    replies: Vec<i64>,
}

/// The client's size budget (docs/ARCHITECTURE.md: a few KB, dependency-free).
const CLIENT_BUDGET_BYTES: u64 = 8 * 1024;

impl JsClient {
    fn script(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    async fn start(server: &TestServer, token: Option<&str>) -> Self {
        let mut command = tokio::process::Command::new("node");
        command
            .arg("--experimental-websocket")
            .arg(Self::script("js/drive.mjs"))
            .arg(format!("ws://{}/api/v1/ws", server.addr))
            .args(token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("node (Node.js >= 20) runs the client; `cargo xtask test` installs it");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        use tokio::io::AsyncBufReadExt;
        Self { child, stdin, lines: tokio::io::BufReader::new(stdout).lines(), replies: Vec::new() }
    }

    async fn command(&mut self, command: Value) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("write to node");
    }

    /// Reads callbacks until one satisfies `wanted` (within 10 s each).
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("waiting for {what}"))
                .expect("read from node")
                .unwrap_or_else(|| panic!("node exited while waiting for {what}"));
            let line: Value = serde_json::from_str(&line).expect("JSON line");
            if line["on"] == "event" && line["event"]["kind"] == "reply.created" {
                self.replies.push(line["event"]["data"]["id"].as_i64().expect("reply id"));
            }
            if wanted(&line) {
                return line;
            }
        }
    }

    async fn status(&mut self, state: &str) {
        self.until(state, |l| l["on"] == "status" && l["state"] == state).await;
    }

    async fn reply(&mut self, id: i64) {
        self.until(&format!("reply {id}"), |l| l["on"] == "event" && l["event"]["data"]["id"] == id).await;
    }

    async fn presence(&mut self, users: Value) {
        self.until(&format!("presence {users}"), |l| l["on"] == "presence" && l["users"] == users).await;
    }
}

#[tokio::test]
async fn the_js_client_resumes_without_gaps_and_tracks_presence_and_typing() {
    let size = std::fs::metadata(JsClient::script("../client/veritable-realtime.js")).expect("the client").len();
    assert!(
        size <= CLIENT_BUDGET_BYTES,
        "the realtime client is {size} bytes, over its {CLIENT_BUDGET_BYTES}-byte budget"
    );

    let (db, client) = FreshDb::seeded("rt_js_client", &Shape::of(Scale::Small), 28).await;
    let server = TestServer::start_with(server_config(&db.url)).await;
    let demo = Api::signed_in(&server, "demo").await;
    let writer = Api::signed_in(&server, "moderator").await;
    let mut js = JsClient::start(&server, demo.token.as_deref()).await;
    js.status("open").await;
    js.command(json!({ "do": "subscribe", "room": "topic:5" })).await;
    js.until("subscribed", |l| l["on"] == "subscribed" && l["room"] == "topic:5").await;
    js.presence(json!(["demo"])).await;
    let mut posted = vec![reply(&writer, 5, "live").await];
    js.reply(posted[0]).await;

    // Another member arrives and types; the typing indicator expires by itself.
    let mut other = open(&server, writer.token.as_deref(), None).await.expect("connect");
    subscribe(&mut other, "topic:5", None).await;
    js.presence(json!(["demo", "moderator"])).await;
    send(&mut other, json!({ "op": "typing", "room": "topic:5" })).await;
    js.until("typing", |l| l["on"] == "typing" && l["users"] == json!(["moderator"])).await;
    js.until("typing expired", |l| l["on"] == "typing" && l["users"] == json!([])).await;

    // Offline while two replies are posted: they come first on reconnect, once.
    js.command(json!({ "do": "close" })).await;
    js.status("closed").await;
    posted.push(reply(&writer, 5, "missed 1").await);
    posted.push(reply(&writer, 5, "missed 2").await);
    js.command(json!({ "do": "connect" })).await;
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    posted.push(reply(&writer, 5, "after reconnect").await);
    js.reply(posted[3]).await;

    // A dropped socket: the client reconnects by itself and resumes.
    js.command(json!({ "do": "drop" })).await;
    js.status("closed").await;
    posted.push(reply(&writer, 5, "during the drop").await);
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    posted.push(reply(&writer, 5, "after the drop").await);
    js.reply(posted[5]).await;
    assert_eq!(js.replies, posted, "every reply once, in order, across a close and a drop");

    other.close(None).await.expect("close");
    js.presence(json!(["demo"])).await;

    // Away for more than the backlog holds (1,000 events): told to resync, then live again.
    js.command(json!({ "do": "close" })).await;
    js.status("closed").await;
    let routed = metric(&server, "veritable_ws_events_routed_total").await;
    client
        .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 5, 3, 'flood ' || g FROM generate_series(1, 1001) g")
        .await
        .expect("more than the backlog");
    until("the proxy has read the flood", || async {
        metric(&server, "veritable_ws_events_routed_total").await >= routed + 1001.0
    })
    .await;
    js.command(json!({ "do": "connect" })).await;
    js.until("resync", |l| l["on"] == "resync" && l["room"] == "topic:5").await;
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    let after_resync = reply(&writer, 5, "after the resync").await;
    js.reply(after_resync).await;
    assert_eq!(js.replies.last(), Some(&after_resync));
    assert_eq!(js.replies.len(), posted.len() + 1, "the flood is not replayed: the app reloads the room instead");
    js.command(json!({ "do": "exit" })).await;
    assert!(js.child.wait().await.expect("node exits").success());
    server.stop().await.expect("stop");
    db.drop_db().await;
}

/// By default an anonymous socket learns nothing of who reads or types in a
/// room: no snapshot, no joins, no typing; events still arrive.
#[tokio::test]
async fn anonymous_sockets_get_no_presence_by_default() {
    let (db, _client) = FreshDb::seeded("rt_anon_presence", &Shape::of(Scale::Small), 29).await;
    let mut config = server_config(&db.url);
    config.ws_anonymous_presence = false;
    let server = TestServer::start_with(config).await;
    let demo = Api::signed_in(&server, "demo").await;

    let mut anonymous = open(&server, None, None).await.expect("connect");
    send(&mut anonymous, json!({ "op": "subscribe", "room": "topic:5", "since": null })).await;
    assert_eq!(next(&mut anonymous).await["type"], "subscribed");
    // A member joins and types; the member itself sees the presence.
    let mut member = open(&server, demo.token.as_deref(), None).await.expect("connect");
    let frames = subscribe(&mut member, "topic:5", None).await;
    assert_eq!(frames.last().expect("frame")["type"], "presence");
    send(&mut member, json!({ "op": "typing", "room": "topic:5" })).await;
    // Then an event: everything the hub sent before it was presence or typing.
    let marker = reply(&demo, 5, "after the presence").await;
    loop {
        let frame = next_of(&mut member, "event").await;
        if frame["data"]["id"] == marker {
            break;
        }
    }
    let frame = next(&mut anonymous).await;
    assert_eq!(frame["type"], "event", "the first frame after subscribing is the event: {frame}");
    assert_eq!(frame["data"]["id"], marker);
    server.stop().await.expect("stop");
    db.drop_db().await;
}
