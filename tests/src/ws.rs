//! WebSocket clients of the proxy's `/api/v1/ws`: open, read and send
//! frames, subscribe, and follow a room's presence.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestServer;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn open(
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
pub async fn next(socket: &mut Socket) -> Value {
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

pub async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.expect("send");
}

pub async fn subscribe(socket: &mut Socket, room: &str, since: Option<i64>) -> Vec<Value> {
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
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame within 10 s") {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return 0,
            Some(Ok(_)) => {}
        }
    }
}

/// The seqs of the next `n` frames, which must all be events, checked to
/// come in order without repeats.
pub async fn events_in_order(socket: &mut Socket, n: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        let frame = next(socket).await;
        assert_eq!(frame["type"], "event", "{frame}");
        seqs.push(frame["id"].as_i64().expect("seq"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, without repeats: {seqs:?}");
    seqs
}

/// The next frame of `kind` (others skipped), within 10 s.
pub async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// A room's members as a client sees them: a snapshot (`users`), then changes (`joined`, `left`).
#[derive(Default)]
pub struct Members(pub std::collections::BTreeMap<i64, String>);

impl Members {
    pub fn apply(&mut self, frame: &Value) {
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

    pub fn usernames(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.values().cloned().collect();
        names.sort();
        names
    }

    /// Reads presence frames until the room holds exactly `want`.
    pub async fn until(&mut self, socket: &mut Socket, want: &[&str]) {
        while self.usernames() != want {
            let frame = next_of(socket, "presence").await;
            self.apply(&frame);
        }
    }
}
