//! Presence and typing across proxies, for signed-in and anonymous sockets, and the JavaScript client.

use std::time::Duration;

use serde_json::{Value, json};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::metrics::metric;
use veritable_tests::ws::{Members, next, next_of, open, send, subscribe};
use veritable_tests::{Api, FreshDb, TestServer, until};

use super::server_config;

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
    let marker = demo.reply(5, "after typing").await;
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
    let marker = demo.reply(5, "after the presence").await;
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

/// The browser client (`client/veritable-realtime.js`), run by Node against
/// the real proxy through `tests/js/drive.mjs`: one JSON line per callback.
struct JsClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Every reply id delivered as an event, in arrival order.
    replies: Vec<i64>,
}

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

/// The client's size budget (docs/ARCHITECTURE.md: a few KB, dependency-free).
const CLIENT_BUDGET_BYTES: u64 = 8 * 1024;

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
    let mut posted = vec![writer.reply(5, "live").await];
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
    posted.push(writer.reply(5, "missed 1").await);
    posted.push(writer.reply(5, "missed 2").await);
    js.command(json!({ "do": "connect" })).await;
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    posted.push(writer.reply(5, "after reconnect").await);
    js.reply(posted[3]).await;

    // A dropped socket: the client reconnects by itself and resumes.
    js.command(json!({ "do": "drop" })).await;
    js.status("closed").await;
    posted.push(writer.reply(5, "during the drop").await);
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    posted.push(writer.reply(5, "after the drop").await);
    js.reply(posted[5]).await;
    assert_eq!(js.replies, posted, "every reply once, in order, across a close and a drop");

    other.close(None).await.expect("close");
    js.presence(json!(["demo"])).await;

    // Away for longer than the backlog holds (its events older than 10 minutes): told to resync, then live again.
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
    client
        .execute("UPDATE events SET created_at = created_at - interval '11 minutes' WHERE room = 'topic:5'", &[])
        .await
        .expect("age the room's events");
    js.command(json!({ "do": "connect" })).await;
    js.until("resync", |l| l["on"] == "resync" && l["room"] == "topic:5").await;
    js.until("resubscribed", |l| l["on"] == "subscribed").await;
    let after_resync = writer.reply(5, "after the resync").await;
    js.reply(after_resync).await;
    assert_eq!(js.replies.last(), Some(&after_resync));
    assert_eq!(js.replies.len(), posted.len() + 1, "the flood is not replayed: the app reloads the room instead");
    js.command(json!({ "do": "exit" })).await;
    assert!(js.child.wait().await.expect("node exits").success());
    server.stop().await.expect("stop");
    db.drop_db().await;
}
