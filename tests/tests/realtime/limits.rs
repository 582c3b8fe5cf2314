//! Bounds and failures: refusals, slow consumers, heartbeats, caps, role changes, the listener's recovery, shutdown.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::metrics::{eventually_metric, metric};
use veritable_tests::ws::{close_code, events_in_order, next, next_of, open, send, subscribe};
use veritable_tests::{Api, FreshDb, TestServer, until};

use super::server_config;

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

    // Bursts bigger than the queue (50 events each, a queue of 2) reach a
    // subscriber that reads whole and in order, however many catch-ups they
    // take: what did not fit is read back from the outbox, and a client that
    // takes what it is sent is never closed as slow.
    let mut reader = open(&server, None, None).await.expect("connect");
    subscribe(&mut reader, "topic:8", None).await;
    for _ in 0..15 {
        client
            .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 8, 3, 'burst ' || g FROM generate_series(1, 50) g")
            .await
            .expect("a burst of 50 in one transaction");
        events_in_order(&mut reader, 50).await;
    }
    assert!(
        metric(&server, "veritable_ws_catch_ups_total").await >= 11.0,
        "more catch-ups than a burst count would allow"
    );
    assert_eq!(metric(&server, "veritable_ws_slow_consumer_closes_total").await, 0.0, "the reader keeps up");

    // One that takes nothing while its room fills, so that once the buffers
    // between them are full the proxy's writes wait for it, is closed with
    // 1013 after 5 s of waiting (the close frame follows what it did not read).
    let mut slow = open(&server, None, None).await.expect("connect");
    subscribe(&mut slow, "topic:9", None).await;
    for _ in 0..400 {
        client
            .batch_execute("INSERT INTO forum_replies (topic_id, author_id, body) SELECT 9, 3, 'again ' || g FROM generate_series(1, 1000) g")
            .await
            .expect("a burst of 1,000");
        if metric(&server, "veritable_ws_slow_consumer_closes_total").await >= 1.0 {
            break;
        }
    }
    assert_eq!(close_code(&mut slow).await, 1013);
    drop(reader);

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
    let before = writer.reply(9, "before").await;
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
    let during = writer.reply(9, "while the listener was down").await;
    assert_eq!(next(&mut socket).await["data"]["id"], during);
    assert!(metric(&server, "veritable_ws_listener_reconnects_total").await >= 1.0);

    let stopping = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut socket).await, 1001, "going away");
    stopping.await.expect("task").expect("stop");
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

/// Logout, a deleted session and a role change close that session's (or
/// user's) sockets on every proxy with 4401; anonymous sockets and other
/// users' stay.
#[tokio::test]
async fn ended_sessions_close_their_sockets_on_every_proxy() {
    let (db, client) = FreshDb::seeded("rt_session_ends", &Shape::of(Scale::Small), 29).await;
    let config = server_config(&db.url);
    let a = TestServer::start_with(config.clone()).await;
    let b = TestServer::start_with(config).await;
    let (first, second, third) =
        (Api::signed_in(&a, "demo").await, Api::signed_in(&a, "demo").await, Api::signed_in(&a, "demo").await);
    let other = Api::signed_in(&a, "moderator").await;
    let demo_room = format!("user:{}", first.get("/api/v1/me").await.1["id"]);

    // Sockets of three sessions of demo on B, an anonymous one and another user's.
    let mut sockets = Vec::new();
    for api in [&first, &second, &third, &other] {
        let mut socket = open(&b, api.token.as_deref(), None).await.expect("a signed-in socket");
        subscribe(&mut socket, "topic:1", None).await;
        sockets.push(socket);
    }
    let mut socket_of_third = sockets.remove(2);
    let mut socket_of_second = sockets.remove(1);
    let mut socket_of_first = sockets.remove(0);
    let mut socket_of_other = sockets.remove(0);
    let mut anonymous = open(&b, None, None).await.expect("anonymous");
    let frames = subscribe(&mut socket_of_first, &demo_room, None).await;
    assert!(frames.iter().any(|f| f["type"] == "subscribed"), "{frames:?}");

    // Logout on A closes that session's socket on B.
    let (status, _) = first.call("POST", "/api/v1/auth/logout", Some(json!({}))).await;
    assert_eq!(status, 204);
    assert_eq!(close_code(&mut socket_of_first).await, 4401, "logged out");
    // Reconnecting with the revoked token is refused.
    let again = open(&b, first.token.as_deref(), None).await;
    assert!(matches!(again, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401), "{again:?}");

    // A session deleted by hand (a DBA) ends the same way.
    let hash = veritable_proxy::sessions::hash_of(second.token.as_deref().expect("a token")).expect("a token's shape");
    let hash = hash.as_slice();
    client.execute("DELETE FROM sessions WHERE token_hash = $1", &[&hash]).await.expect("delete the session");
    assert_eq!(close_code(&mut socket_of_second).await, 4401, "session deleted");

    // A role change ends every socket of the user, so each reconnects with its new rights.
    client.execute("UPDATE users SET role = 'moderator' WHERE username = 'demo'", &[]).await.expect("promote");
    assert_eq!(close_code(&mut socket_of_third).await, 4401, "role changed");
    let mut reopened = open(&b, third.token.as_deref(), None).await.expect("the session is still valid");
    subscribe(&mut reopened, "topic:1", None).await;

    // Everyone else is still served.
    for socket in [&mut socket_of_other, &mut anonymous, &mut reopened] {
        send(socket, json!({ "op": "ping" })).await;
        assert_eq!(next_of(socket, "pong").await["type"], "pong");
    }
    assert_eq!(metric(&b, "veritable_ws_session_closes_total").await, 3.0);
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    db.drop_db().await;
}
