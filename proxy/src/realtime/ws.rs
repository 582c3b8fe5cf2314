//! `GET /api/v1/ws`: the WebSocket protocol of docs/ARCHITECTURE.md.
//!
//! Client → server: `{"op":"subscribe","room":"topic:42","since":<seq|null>}`,
//! `{"op":"unsubscribe","room":...}`, `{"op":"ping"}`.
//! Server → client: `{"type":"event",...}`, `{"type":"subscribed","room":...,"cursor":...}`,
//! `{"type":"resync","room":...}`, `{"type":"pong"}`, `{"type":"error","code":...,"message":...}`.
//!
//! One task per connection owns everything of it (its hub registration, its
//! queue, its timers); when the task ends, all of it is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::hub::{Delivery, Hub, Owner, Refusal, Registration};
use crate::AppError;
use crate::AppState;
use crate::sessions::HotSession;
use crate::store::Db;
use crate::store::ids::{CategoryId, TopicId};

/// Largest frame a client may send.
pub const MAX_INBOUND_BYTES: usize = 4 * 1024;
/// Read chunk per socket, and how many bytes of queued events are coalesced
/// into one write (a single frame still goes out at once).
const SOCKET_BUFFER_BYTES: usize = 4 * 1024;
/// Events taken from a connection's queue per wake-up and written together.
const DELIVERY_BATCH: usize = 32;
/// What may pile up unsent when writes fail, before the socket errors.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Pings unanswered before the connection counts as dead.
const MISSED_PINGS: u32 = 2;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Inbound frames: a bucket of 40, refilled at 20 per second.
const BURST: f64 = 40.0;
const REFILL_PER_SEC: f64 = 20.0;
/// Errors (malformed frames, refused subscriptions, rate) before closing 1008.
const MAX_ERRORS: u32 = 20;
/// Backlog for `since` and for catching up: none older than 10 minutes (in
/// the BACKLOG statement), at most this many bytes of frames per room (a
/// room at 300 events/s is ~60 KB a second: a minute and more of it), read
/// and sent in pages of `BACKLOG_PAGE` events. Past either: `resync`.
const BACKLOG_BYTES: usize = 4 * 1024 * 1024;
const BACKLOG_PAGE: i64 = 500;
/// A connection is too slow, and closed with 1013, when within
/// `SLOW_WINDOW` it spent more than `SLOW_WRITING` waiting for its client
/// to take what was written (TCP backpressure): a client that reads slower
/// than its rooms fill. Overflowing its queue is not enough: the listener
/// routes a page of up to 1,000 events at once, so after a sequencer stall
/// or a listener reconnect every subscriber of a busy room overflows and
/// catches up, page after page, however fast it reads (counting catch-ups,
/// 10 in 10 s, closed all four readers of an 8 s lock stall).
const SLOW_WRITING: Duration = Duration::from_secs(5);
const SLOW_WINDOW: Duration = Duration::from_secs(10);
/// A write that took longer than this waited for the client.
const BLOCKED_WRITE: Duration = Duration::from_millis(5);
/// Catch-ups within `SLOW_WINDOW` past which a connection is closed (1013)
/// anyway: each reads the outbox, and this bounds what one connection can
/// make the database do (a burst takes one per listener page).
const MAX_CATCH_UPS: usize = 100;

/// Close codes.
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const TRY_AGAIN_LATER: u16 = 1013;
/// The session the socket was opened with ended (logout, expiry, a deleted
/// account, a changed role): sign in again, or reconnect anonymously.
pub const SESSION_ENDED: u16 = 4401;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Subscribe { room: String, since: Option<i64> },
    Unsubscribe { room: String },
    Typing { room: String },
    Ping,
}

/// `GET /api/v1/ws`: signed in by cookie or bearer token, or anonymous
/// (public rooms only).
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !crate::http::origin::allowed(&headers, &state.realtime.allowed_origins, state.cookie_secure) {
        return Err(AppError::Forbidden("this Origin may not open a WebSocket here"));
    }
    let user = crate::http::extract::optional_user(&headers, &state).await?;
    let owner = user.as_ref().map(|u| Owner { user: u.user_id, session: u.session_id });
    let (registration, queue) = state.realtime.hub.connect(owner, peer.ip()).map_err(|refusal| {
        AppError::RateLimited { retry_after: if refusal == Refusal::TooManyForAddress { 10 } else { 5 } }
    })?;
    let db = state.db.clone();
    let hub = state.realtime.hub.clone();
    let shutdown = state.realtime.shutdown.clone();
    Ok(ws
        .max_message_size(MAX_INBOUND_BYTES)
        .max_frame_size(MAX_INBOUND_BYTES)
        // tungstenite's defaults (128 KiB to read, 128 KiB to write) made an
        // idle socket cost ~60 KB of RSS; frames here are small.
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            Connection {
                hub,
                db,
                user,
                registration,
                last_sent: HashMap::new(),
                errors: 0,
                catch_ups: Vec::new(),
                blocked: Blocked::default(),
            }
            .serve(socket, queue, shutdown)
            .await;
        })
        .into_response())
}

struct Connection {
    hub: Arc<Hub>,
    db: Db,
    user: Option<HotSession>,
    registration: Registration,
    /// Per room, the newest seq sent: the seam between backlog and live events.
    last_sent: HashMap<Arc<str>, i64>,
    errors: u32,
    /// When it last had to catch up (within `SLOW_WINDOW`).
    catch_ups: Vec<tokio::time::Instant>,
    blocked: Blocked,
}

/// Writes that waited for the client within `SLOW_WINDOW`: when each ended
/// and how long it took.
#[derive(Default)]
struct Blocked(Vec<(tokio::time::Instant, Duration)>);

impl Blocked {
    /// How long writes waited within the window ending at `now`.
    fn waited(&mut self, now: tokio::time::Instant) -> Duration {
        self.0.retain(|(at, _)| now.duration_since(*at) < SLOW_WINDOW);
        self.0.iter().map(|(_, took)| *took).sum()
    }

    /// How much longer writes may wait at `now` before the connection is too slow.
    fn allowance(&mut self, now: tokio::time::Instant) -> Duration {
        SLOW_WRITING.saturating_sub(self.waited(now))
    }

    /// Counts a write that ended at `now` after `took`; whether the
    /// connection has now waited past `SLOW_WRITING` within `SLOW_WINDOW`.
    fn too_slow(&mut self, now: tokio::time::Instant, took: Duration) -> bool {
        if took > BLOCKED_WRITE {
            self.0.push((now, took));
        }
        self.waited(now) > SLOW_WRITING
    }
}

/// A page of a room's backlog, or the sign that the room is too far behind.
enum Backlog {
    Page(Vec<(i64, String)>),
    Resync,
}

fn error_frame(code: &str, message: &str) -> String {
    json!({ "type": "error", "code": code, "message": message }).to_string()
}

enum Flow {
    Continue,
    Close(u16, &'static str),
}

impl Connection {
    async fn serve(
        mut self,
        socket: WebSocket,
        mut queue: tokio::sync::mpsc::Receiver<Delivery>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let (mut sink, mut stream) = socket.split();
        let mut ping = tokio::time::interval(self.hub.limits.ping_every);
        ping.reset();
        let mut missed = 0;
        let mut tokens = BURST;
        let mut refilled = tokio::time::Instant::now();
        let (behind, ended) = (self.registration.behind.clone(), self.registration.ended.clone());
        // Made once, not per wake-up: a fresh `cancelled()` future takes the
        // token tree's lock to check and register (5% of the proxy's CPU at
        // 3,000 subscribers when it was made in the loop).
        let (shutting_down, session_ended) = (shutdown.cancelled(), ended.cancelled());
        let expired = self.session_expiry();
        tokio::pin!(shutting_down, session_ended, expired);
        let close = loop {
            tokio::select! {
                () = &mut shutting_down => break Some((GOING_AWAY, "server shutting down")),
                () = behind.notified() => {
                    if let Err(close) = self.catch_up(&mut sink, &mut queue).await {
                        break close;
                    }
                }
                () = &mut session_ended => break Some((SESSION_ENDED, "session ended")),
                () = &mut expired => {
                    self.hub.metrics.session_closes.inc();
                    break Some((SESSION_ENDED, "session expired"));
                }
                delivery = queue.recv() => match delivery {
                    Some(delivery) => {
                        // Whatever else is queued goes out in the same writes.
                        let mut batch: Vec<Message> = self.deliver(delivery).map(Message::Text).into_iter().collect();
                        while batch.len() < DELIVERY_BATCH {
                            let Ok(more) = queue.try_recv() else { break };
                            batch.extend(self.deliver(more).map(Message::Text));
                        }
                        match self.write(&mut sink, batch).await {
                            Err(()) => break None,
                            Ok(true) => break Some((TRY_AGAIN_LATER, "too slow: resume with since")),
                            Ok(false) => {}
                        }
                    }
                    None => break None,
                },
                _ = ping.tick() => {
                    if missed >= MISSED_PINGS {
                        self.hub.metrics.heartbeat_closes.inc();
                        break Some((GOING_AWAY, "no answer to pings"));
                    }
                    missed += 1;
                    if send(&mut sink, Message::Ping(Default::default())).await.is_err() {
                        break None;
                    }
                }
                message = stream.next() => match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Pong(_))) => missed = 0,
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Ok(message)) => {
                        let now = tokio::time::Instant::now();
                        tokens = (tokens + now.duration_since(refilled).as_secs_f64() * REFILL_PER_SEC).min(BURST);
                        refilled = now;
                        let flow = if tokens < 1.0 {
                            self.refuse(&mut sink, "rate_limited", "too many frames; slow down").await
                        } else {
                            tokens -= 1.0;
                            self.handle(&mut sink, message).await
                        };
                        if let Flow::Close(code, reason) = flow {
                            break Some((code, reason));
                        }
                    }
                },
            }
        };
        if let Some((code, reason)) = close {
            let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
            let _ = send(&mut sink, Message::Close(Some(frame))).await;
        }
        // `self` (the registration, the queue) drops here: the hub forgets this connection.
    }

    /// Resolves when the socket's session expires (never for an anonymous
    /// one). A session renewed meanwhile is still valid when the client
    /// reconnects with it.
    fn session_expiry(&self) -> impl std::future::Future<Output = ()> + use<> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let left = time_left(self.user.as_ref(), now);
        async move {
            match left {
                Some(left) => tokio::time::sleep(left).await,
                None => std::future::pending().await,
            }
        }
    }

    /// A live event, unless the backlog already sent it; presence and
    /// typing frames of a room still subscribed.
    fn deliver(&mut self, delivery: Delivery) -> Option<Utf8Bytes> {
        if delivery.seq.is_none() && !self.sees_presence() {
            return None;
        }
        let last = self.last_sent.get_mut(&delivery.room)?;
        if let Some(seq) = delivery.seq {
            if seq <= *last {
                return None;
            }
            *last = seq;
        }
        Some(delivery.frame)
    }

    async fn refuse<S>(&mut self, sink: &mut S, code: &str, message: &str) -> Flow
    where
        S: SinkExt<Message> + Unpin,
    {
        // The server being busy is not the client's fault: it may retry as often as its frame budget allows.
        if code != "unavailable" {
            self.errors += 1;
        }
        if self.errors > MAX_ERRORS {
            return Flow::Close(POLICY, "too many bad frames");
        }
        if send(sink, Message::Text(error_frame(code, message).into())).await.is_err() {
            return Flow::Close(POLICY, "unreachable");
        }
        Flow::Continue
    }

    async fn handle<S>(&mut self, sink: &mut S, message: Message) -> Flow
    where
        S: SinkExt<Message> + Unpin,
    {
        let Message::Text(text) = message else {
            return self.refuse(sink, "bad_frame", "frames are JSON text").await;
        };
        let op = match serde_json::from_str::<Op>(text.as_str()) {
            Ok(op) => op,
            Err(error) => return self.refuse(sink, "bad_frame", &format!("not a known op: {error}")).await,
        };
        match op {
            Op::Ping => reply(sink, json!({ "type": "pong" })).await,
            Op::Typing { room } => match self.typing(&room).await {
                Ok(()) => Flow::Continue,
                Err((code, message)) => self.refuse(sink, code, message).await,
            },
            Op::Unsubscribe { room } => {
                self.hub.unsubscribe(self.registration.id, &room);
                self.last_sent.remove(room.as_str());
                reply(sink, json!({ "type": "unsubscribed", "room": room })).await
            }
            Op::Subscribe { room, since } => match self.subscribe(&room, since).await {
                Ok(frames) => {
                    for frame in frames {
                        if send(sink, Message::Text(frame.into())).await.is_err() {
                            return Flow::Close(POLICY, "unreachable");
                        }
                    }
                    Flow::Continue
                }
                Err((code, message)) => self.refuse(sink, code, &message).await,
            },
        }
    }

    /// Authorizes, joins, and returns the frames to send: the backlog after
    /// `since` (or `resync`), then `subscribed`.
    async fn subscribe(&mut self, room: &str, since: Option<i64>) -> Result<Vec<String>, (&'static str, String)> {
        let (kind, key) = room.split_once(':').ok_or(("bad_room", format!("{room} is not a room")))?;
        let readable = match kind {
            "user" => {
                let own = self.user.as_ref().map(|u| u.user_id.to_string());
                if own.as_deref() != Some(key) {
                    return Err(("forbidden", "user rooms are their owner's only".into()));
                }
                true
            }
            "topic" | "category" | "wiki" => {
                self.exists(kind, key).await.map_err(|_| ("unavailable", "try again".to_owned()))?
            }
            _ => return Err(("bad_room", format!("unknown room kind {kind}"))),
        };
        if !readable {
            return Err(("not_found", format!("no such room: {room}")));
        }
        let cursor = self.hub.subscribe(self.registration.id, room).map_err(|_| {
            ("too_many_rooms", format!("at most {} rooms per connection", self.hub.limits.rooms_per_connection))
        })?;
        let room_key: Arc<str> = Arc::from(room);
        let mut frames = Vec::new();
        // A client ahead of this proxy (it saw events elsewhere) is not sent them twice.
        let last = cursor.max(since.unwrap_or(0));
        if let Some(since) = since.filter(|s| *s < cursor) {
            match self.backlog(room, since, cursor).await {
                Ok(Some(events)) => frames.extend(events.into_iter().map(|(_, frame)| frame)),
                Ok(None) => frames.push(json!({ "type": "resync", "room": room }).to_string()),
                Err(_) => return Err(("unavailable", "try again".into())),
            }
        }
        self.last_sent.insert(room_key, last);
        frames.push(json!({ "type": "subscribed", "room": room, "cursor": cursor }).to_string());
        if super::hub::has_presence(room) && self.sees_presence() {
            // Who is here now; later changes arrive as further presence frames.
            let users = self.presence_of(room).await.map_err(|_| ("unavailable", "try again".to_owned()))?;
            frames.push(super::presence::frame(room, &users).to_string());
        }
        Ok(frames)
    }

    /// Who reads and types where is for signed-in users, unless configured.
    fn sees_presence(&self) -> bool {
        self.user.is_some() || self.hub.limits.anonymous_presence
    }

    async fn presence_of(&self, room: &str) -> Result<String, AppError> {
        self.db.get().await?.presence_of(room).await
    }

    /// Tells the room's other members (on every proxy) that this user is
    /// typing; more than one per 2 s per user and room is coalesced away.
    async fn typing(&self, room: &str) -> Result<(), (&'static str, &'static str)> {
        let Some(user) = &self.user else { return Err(("unauthorized", "sign in to type")) };
        if !self.last_sent.contains_key(room) || !super::hub::has_presence(room) {
            return Err(("not_subscribed", "subscribe to the room first"));
        }
        if !self.hub.typing_allowed(user.user_id, room) {
            return Ok(());
        }
        let frame = json!({
            "type": "typing", "room": room, "user": { "id": user.user_id, "username": user.username },
            "expires_in_ms": super::presence::TYPING_SHOWN_MS,
        })
        .to_string();
        let conn = self.db.get().await.map_err(|_| ("unavailable", "try again"))?;
        conn.typing_notify(&frame).await.map_err(|_| ("unavailable", "try again"))?;
        Ok(())
    }

    async fn exists(&self, kind: &str, key: &str) -> Result<bool, AppError> {
        let conn = self.db.get().await?;
        let found = match kind {
            "topic" => match key.parse::<i64>() {
                Ok(id) => conn.topic_exists(TopicId(id)).await?,
                Err(_) => false,
            },
            "category" => match key.parse::<i64>() {
                Ok(id) => conn.category_exists(CategoryId(id)).await?,
                Err(_) => false,
            },
            _ => conn.wiki_exists(key).await?,
        };
        Ok(found)
    }

    /// The room's events in (since, cursor], or None when that is more than
    /// the backlog holds (over `BACKLOG_BYTES`, older than 10 minutes, or
    /// pruned): the client resyncs. Read a page at a time.
    async fn backlog(&self, room: &str, since: i64, cursor: i64) -> Result<Option<Vec<(i64, String)>>, AppError> {
        let mut events = Vec::new();
        let (mut after, mut bytes) = (since, 0);
        loop {
            match self.backlog_page(room, after, cursor, since == after).await? {
                Backlog::Resync => return Ok(None),
                Backlog::Page(page) => {
                    let full = page.len() as i64 == BACKLOG_PAGE;
                    bytes += page.iter().map(|(_, frame)| frame.len()).sum::<usize>();
                    if bytes > BACKLOG_BYTES {
                        return Ok(None);
                    }
                    after = page.last().map_or(cursor, |(seq, _)| *seq);
                    events.extend(page);
                    if !full {
                        return Ok(Some(events));
                    }
                }
            }
        }
    }

    /// One page of a room's events after `after`, up to `cursor`; the first
    /// page also checks that nothing after `after` was pruned.
    async fn backlog_page(&self, room: &str, after: i64, cursor: i64, first: bool) -> Result<Backlog, AppError> {
        let _reading = self.hub.backlog_reads.acquire().await.map_err(|_| AppError::Busy)?;
        let conn = self.db.get().await?;
        if first && conn.oldest_event().await?.is_some_and(|oldest| oldest > after + 1) {
            return Ok(Backlog::Resync);
        }
        let rows = conn.backlog(room, after, cursor, BACKLOG_PAGE).await?;
        if rows.iter().any(|r| r.get::<_, bool>(2)) {
            return Ok(Backlog::Resync);
        }
        Ok(Backlog::Page(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
    }

    /// The queue overflowed and events were dropped: sends what is queued,
    /// then, per room that lost events, what the outbox holds after the last event sent, up
    /// to the hub's cursor (a room too far behind gets `resync`). Live
    /// events queued meanwhile up to that cursor are then skipped as sent.
    /// A connection that waited for its client past `SLOW_WRITING`, or
    /// needs this more than `MAX_CATCH_UPS` times, in `SLOW_WINDOW` is closed
    /// with 1013 (and resumes with `since`, like after any disconnect).
    async fn catch_up<S>(
        &mut self,
        sink: &mut S,
        queue: &mut tokio::sync::mpsc::Receiver<Delivery>,
    ) -> Result<(), Option<(u16, &'static str)>>
    where
        S: SinkExt<Message> + Unpin,
    {
        const SLOW: Option<(u16, &str)> = Some((TRY_AGAIN_LATER, "too slow: resume with since"));
        let now = tokio::time::Instant::now();
        self.catch_ups.retain(|at| now.duration_since(*at) < SLOW_WINDOW);
        self.catch_ups.push(now);
        if self.catch_ups.len() > MAX_CATCH_UPS {
            self.hub.metrics.slow_closes.inc();
            return Err(SLOW);
        }
        self.hub.metrics.catch_ups.inc();
        let mut queued = Vec::new();
        while let Ok(delivery) = queue.try_recv() {
            queued.extend(self.deliver(delivery).map(Message::Text));
        }
        if self.write(sink, queued).await.map_err(|()| None)? {
            return Err(SLOW);
        }
        let (dropped, cursor) = self.hub.take_dropped(self.registration.id);
        let behind: Vec<(Arc<str>, i64)> = dropped
            .into_iter()
            .filter_map(|room| self.last_sent.get(&room).map(|last| (room, *last)))
            .filter(|(_, last)| *last < cursor)
            .collect();
        for (room, last) in behind {
            let frames = match self.backlog(&room, last, cursor).await {
                Ok(Some(events)) => events.into_iter().map(|(_, frame)| Message::Text(frame.into())).collect(),
                Ok(None) => vec![Message::Text(json!({ "type": "resync", "room": &*room }).to_string().into())],
                // The database is away: the client resumes with `since` when it is back.
                Err(_) => {
                    return Err(Some((TRY_AGAIN_LATER, "behind and the database is unavailable: resume with since")));
                }
            };
            if let Some(sent) = self.last_sent.get_mut(&room) {
                *sent = (*sent).max(cursor);
            }
            if self.write(sink, frames).await.map_err(|()| None)? {
                return Err(SLOW);
            }
        }
        Ok(())
    }

    /// Writes events (see `send_all`), timing the write: Ok(true) when the
    /// connection has now waited for its client longer than `SLOW_WRITING`
    /// within `SLOW_WINDOW` (counted in the slow closes).
    async fn write<S>(&mut self, sink: &mut S, messages: Vec<Message>) -> Result<bool, ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        let started = tokio::time::Instant::now();
        // A client that takes nothing would keep the write waiting until
        // SEND_TIMEOUT: it gets only what is left of its allowance.
        let allowance = self.blocked.allowance(started) + BLOCKED_WRITE;
        let written = tokio::time::timeout(allowance, send_all(sink, messages)).await;
        if let Ok(result) = written {
            result?;
        }
        let now = tokio::time::Instant::now();
        let slow = self.blocked.too_slow(now, now.duration_since(started));
        if slow {
            self.hub.metrics.slow_closes.inc();
        }
        Ok(slow)
    }
}

/// How long `user`'s session has left at `now` (Unix seconds); None when anonymous.
fn time_left(user: Option<&HotSession>, now: u64) -> Option<Duration> {
    user.map(|u| Duration::from_secs(u64::try_from(u.expires_at).unwrap_or(0).saturating_sub(now)))
}

async fn send<S>(sink: &mut S, message: Message) -> Result<(), ()>
where
    S: SinkExt<Message> + Unpin,
{
    send_all(sink, vec![message]).await
}

/// Writes `messages` and flushes once, within `SEND_TIMEOUT`: queued
/// events share syscalls.
async fn send_all<S>(sink: &mut S, messages: Vec<Message>) -> Result<(), ()>
where
    S: SinkExt<Message> + Unpin,
{
    if messages.is_empty() {
        return Ok(());
    }
    let written = async {
        for message in messages {
            sink.feed(message).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, written).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn reply<S>(sink: &mut S, frame: serde_json::Value) -> Flow
where
    S: SinkExt<Message> + Unpin,
{
    match send(sink, Message::Text(frame.to_string().into())).await {
        Ok(()) => Flow::Continue,
        Err(()) => Flow::Close(POLICY, "unreachable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_too_slow_after_waiting_past_the_allowance_within_the_window() {
        let start = tokio::time::Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut blocked = Blocked::default();
        assert!(!blocked.too_slow(at(1), Duration::from_millis(2)), "a quick write is not counted");
        assert!(blocked.0.is_empty());
        assert!(!blocked.too_slow(at(3_000), Duration::from_secs(3)));
        assert!(!blocked.too_slow(at(14_000), Duration::from_secs(3)), "the first wait left the window");
        assert_eq!(blocked.allowance(at(16_000)), Duration::from_secs(2), "3 s of the last 10 s spent waiting");
        assert!(blocked.too_slow(at(16_500), Duration::from_millis(2_500)), "5.5 s of waiting within 10 s");
    }

    #[test]
    fn a_socket_lives_as_long_as_its_session() {
        let user = |expires_at| HotSession {
            session_id: 1,
            user_id: 2,
            username: "demo".into(),
            role: "member".into(),
            expires_at,
        };
        assert_eq!(time_left(None, 100), None, "anonymous: no expiry");
        assert_eq!(time_left(Some(&user(160)), 100), Some(Duration::from_secs(60)));
        assert_eq!(time_left(Some(&user(50)), 100), Some(Duration::ZERO), "already past: at once");
        assert_eq!(time_left(Some(&user(-5)), 100), Some(Duration::ZERO));
    }
}
