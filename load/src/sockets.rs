//! WebSocket users: each holds one socket on a few topic rooms for the whole
//! run, resumes with `since` after any disconnect, and logs every reply
//! event it receives, for the delivery check at the end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What one socket saw in one room.
#[derive(Debug, Default)]
pub struct RoomLog {
    /// The newest event id (seq) received: the `since` of a resume.
    pub last_seq: Option<i64>,
    /// Reply ids of `reply.created` events, in arrival order.
    pub replies: Vec<i64>,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub resyncs: u64,
}

#[derive(Debug, Default)]
pub struct SocketLog {
    pub rooms: HashMap<i64, RoomLog>,
    /// Connections after the first (each resumed with `since`).
    pub reconnects: u64,
    /// Connection attempts the proxy refused (e.g. 503 to the upgrade), retried with backoff.
    pub refused: u64,
    connected_once: bool,
    /// `{"type":"error"}` frames and refused subscriptions.
    pub errors: u64,
    pub last_close: Option<String>,
    /// Why each connection ended, counted.
    pub closes: HashMap<String, u64>,
}

impl SocketLog {
    fn event(&mut self, topic: i64, seq: i64, reply: Option<i64>) {
        let room = self.rooms.entry(topic).or_default();
        match room.last_seq {
            Some(last) if seq == last => room.duplicates += 1,
            Some(last) if seq < last => {
                if reply.is_some_and(|r| room.replies.contains(&r)) {
                    room.duplicates += 1;
                } else {
                    room.out_of_order += 1;
                    room.replies.extend(reply);
                }
            }
            _ => {
                room.last_seq = Some(seq);
                room.replies.extend(reply);
            }
        }
    }

    pub fn received(&self) -> usize {
        self.rooms.values().map(|r| r.replies.len()).sum()
    }
}

pub type Shared = Arc<Mutex<SocketLog>>;

/// Every socket user of a run: opened before the load, closed after the drain.
pub struct Fleet {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    /// Each socket's rooms (topic ids) and log.
    pub logs: Vec<(Vec<i64>, Shared)>,
}

/// How long the whole fleet may take to connect and subscribe.
const OPENING: Duration = Duration::from_secs(120);

impl Fleet {
    /// Opens one socket per entry of `rooms` (socket `n` signed in with
    /// token `n` mod their number) and returns once every one has subscribed
    /// to all its rooms, so that every reply acknowledged later is owed to it.
    pub async fn open(ws_url: &str, tokens: &[String], rooms: Vec<Vec<i64>>) -> anyhow::Result<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let mut fleet = Self { tasks: JoinSet::new(), stop, logs: Vec::with_capacity(rooms.len()) };
        for (n, rooms) in rooms.into_iter().enumerate() {
            let log = Shared::default();
            fleet.logs.push((rooms.clone(), log.clone()));
            let token = tokens.get(n % tokens.len().max(1)).cloned().unwrap_or_default();
            fleet.tasks.spawn(run(ws_url.to_owned(), token, rooms, log, stop_rx.clone(), ready_tx.clone()));
        }
        drop(ready_tx);
        let total = fleet.logs.len();
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("  opening sockets {pos}/{len} {wide_bar}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let deadline = Instant::now() + OPENING;
        for _ in 0..total {
            if !matches!(tokio::time::timeout_at(deadline, ready_rx.recv()).await, Ok(Some(()))) {
                let why: Vec<String> =
                    fleet.logs.iter().filter_map(|(_, l)| crate::lock(l).last_close.clone()).take(3).collect();
                anyhow::bail!(
                    "only {} of {total} sockets subscribed within {} s; last closes: {why:?}",
                    bar.position(),
                    OPENING.as_secs()
                );
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(fleet)
    }

    /// Reply events received so far, over all sockets.
    pub fn received(&self) -> u64 {
        self.logs.iter().map(|(_, l)| crate::lock(l).received() as u64).sum()
    }

    /// Waits until every socket holds the event of every acknowledged reply
    /// (`acked`, by topic) of its rooms, or `limit` passes; returns the
    /// seconds it took. Counting is not enough: a post answered 503
    /// `outcome_unknown` may have been written, and its event would stand in
    /// for an acknowledged one still on its way.
    pub async fn drain(&self, acked: &HashMap<i64, Vec<i64>>, limit: Duration) -> f64 {
        let started = Instant::now();
        let owed = crate::delivery::owed(acked, &self.logs.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>());
        while started.elapsed() < limit {
            if self.received() >= owed && self.holds_all(acked) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed().as_secs_f64()
    }

    /// Whether every socket has received every acknowledged reply of its rooms.
    fn holds_all(&self, acked: &HashMap<i64, Vec<i64>>) -> bool {
        self.logs.iter().all(|(rooms, log)| {
            let log = crate::lock(log);
            rooms.iter().all(|topic| {
                let expected = acked.get(topic).map_or(&[][..], Vec::as_slice);
                let mut received = log.rooms.get(topic).map(|r| r.replies.clone()).unwrap_or_default();
                received.sort_unstable();
                expected.iter().all(|id| received.binary_search(id).is_ok())
            })
        })
    }

    /// Closes every socket and hands back what each one saw.
    pub async fn close(mut self) -> Vec<(Vec<i64>, SocketLog)> {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.logs.into_iter().map(|(rooms, log)| (rooms, std::mem::take(&mut *crate::lock(&log)))).collect()
    }
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    frame: String,
    room: Option<String>,
    id: Option<i64>,
    kind: Option<String>,
    data: Option<EventData>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct EventData {
    id: Option<i64>,
}

fn topic_of(room: Option<&str>) -> Option<i64> {
    room?.strip_prefix("topic:")?.parse().ok()
}

/// Runs one socket user until `stop` turns true; logs into `log`, and sends
/// on `ready` once its first connection has subscribed to every room.
async fn run(
    ws_url: String,
    token: String,
    rooms: Vec<i64>,
    log: Shared,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::UnboundedSender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(50);
    while !*stop.borrow() {
        let outcome = tokio::select! {
            outcome = session(&ws_url, &token, &rooms, &log, &mut ready) => outcome,
            _ = stop.wait_for(|s| *s) => return,
        };
        let reason = match outcome {
            Ok(reason) => {
                backoff = Duration::from_millis(50);
                reason
            }
            Err(error) => {
                backoff = (backoff * 2).min(Duration::from_secs(2));
                error.to_string()
            }
        };
        {
            let mut log = crate::lock(&log);
            *log.closes.entry(reason.clone()).or_default() += 1;
            log.last_close = Some(reason);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One connection: subscribe (resuming each room from its last seq), then
/// read until the socket ends. Returns why it ended.
///
/// The proxy answers a connection's frames in order, so the n-th
/// `subscribed` or `error` answers the n-th subscribe; a room refused as
/// `unavailable` (the proxy was busy) is asked for again a little later.
async fn session(
    ws_url: &str,
    token: &str,
    rooms: &[i64],
    log: &Shared,
    ready: &mut Option<mpsc::UnboundedSender<()>>,
) -> anyhow::Result<String> {
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let connected = tokio_tungstenite::connect_async(request).await;
    let mut socket = {
        let mut log = crate::lock(log);
        match connected {
            Ok((socket, _)) => {
                if log.connected_once {
                    log.reconnects += 1;
                }
                log.connected_once = true;
                socket
            }
            Err(error) => {
                log.refused += 1;
                return Err(error.into());
            }
        }
    };
    let mut pending = VecDeque::new();
    let mut retry: Vec<i64> = rooms.to_vec();
    let mut subscribed = 0;
    let mut retry_at = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        if !retry.is_empty() && Instant::now() >= retry_at {
            for topic in retry.drain(..) {
                let since = crate::lock(log).rooms.get(&topic).and_then(|r| r.last_seq);
                let frame = serde_json::json!({ "op": "subscribe", "room": format!("topic:{topic}"), "since": since });
                socket.send(Message::Text(frame.to_string().into())).await?;
                pending.push_back(topic);
            }
        }
        if subscribed == rooms.len()
            && let Some(ready) = ready.take()
        {
            let _ = ready.send(());
        }
        let wake = if retry.is_empty() { Instant::now() + Duration::from_secs(3600) } else { retry_at };
        let message = tokio::select! {
            message = socket.next() => message,
            () = tokio::time::sleep_until(wake) => continue,
        };
        let Some(message) = message else { return Ok("ended".into()) };
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(frame) => return Ok(frame.map_or("closed".into(), |f| format!("closed {}", f.code))),
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            crate::lock(log).errors += 1;
            continue;
        };
        let topic = topic_of(frame.room.as_deref());
        match (frame.frame.as_str(), topic) {
            ("event", Some(topic)) => {
                let reply = match frame.kind.as_deref() {
                    Some("reply.created") => frame.data.and_then(|d| d.id),
                    _ => None,
                };
                if let Some(seq) = frame.id {
                    crate::lock(log).event(topic, seq, reply);
                }
            }
            ("subscribed", Some(_)) => {
                pending.pop_front();
                subscribed += 1;
                backoff = Duration::from_millis(100);
            }
            // Too far behind for a backlog: what was missed stays missed.
            ("resync", Some(topic)) => crate::lock(log).rooms.entry(topic).or_default().resyncs += 1,
            ("error", _) => {
                let refused = pending.pop_front();
                match (refused, frame.code.as_deref()) {
                    (Some(topic), Some("unavailable")) => {
                        retry.push(topic);
                        retry_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    _ => crate::lock(log).errors += 1,
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_and_reversals_are_told_apart() {
        let mut log = SocketLog::default();
        log.event(7, 10, Some(100));
        log.event(7, 11, Some(101));
        log.event(7, 11, Some(101));
        log.event(7, 10, Some(100));
        log.event(7, 9, Some(99));
        let room = &log.rooms[&7];
        assert_eq!((room.duplicates, room.out_of_order, room.replies.len()), (2, 1, 3));
    }
}
