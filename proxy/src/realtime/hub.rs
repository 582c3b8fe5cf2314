//! The rooms of one proxy: who is connected, who listens to which room, and
//! the routing of sequenced events to them.
//!
//! Every connection is a [`Registration`]; dropping it (however the
//! connection ends: close frame, TCP reset, slow-consumer close, shutdown)
//! removes its rooms and counts, so nothing outlives a connection. Routing
//! never waits on a client: each connection has a bounded queue, and when it
//! is full the event is dropped and the connection told it is behind: it
//! reads what it missed back from the outbox (`ws.rs`), so a burst (a
//! listener catching up after a reconnect or a stall) never closes a healthy
//! subscriber, and memory stays bounded whatever the burst.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::Utf8Bytes;
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One sequenced outbox row, as read by the listener.
pub struct Event {
    pub seq: i64,
    pub room: String,
    pub kind: String,
    /// `payload.session_id` and `payload.user_id` when present (cache invalidation).
    pub session_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The whole frame, serialized once and shared (not copied) by every subscriber.
    pub frame: Utf8Bytes,
    /// Seconds since the event was written (for the fan-out lag metric).
    pub age_seconds: f64,
}

/// What the hub hands a connection's task.
#[derive(Clone)]
pub struct Delivery {
    pub room: Arc<str>,
    /// The event's seq; None for presence and typing frames (not sequenced).
    pub seq: Option<i64>,
    pub frame: Utf8Bytes,
}

/// A signed-in user's local presence in one room.
struct Present {
    connections: usize,
    last_typing: Option<std::time::Instant>,
}

/// Typing indicators of one user in one room: at most one per this interval.
pub const TYPING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Rooms with presence (user rooms are private).
pub fn has_presence(room: &str) -> bool {
    !room.starts_with("user:")
}

/// Bounds per proxy.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_user: usize,
    pub per_ip: usize,
    pub rooms_per_connection: usize,
    pub queue: usize,
    /// Between server pings; a connection that leaves two unanswered is closed.
    pub ping_every: std::time::Duration,
    /// Presence and typing frames for anonymous connections too.
    pub anonymous_presence: bool,
}

#[derive(Clone)]
pub struct HubMetrics {
    pub connections: IntGauge,
    pub rooms: IntGauge,
    pub subscriptions: IntGauge,
    pub tracked_clients: IntGauge,
    pub routed: IntCounter,
    pub queue_drops: IntCounter,
    pub slow_closes: IntCounter,
    pub catch_ups: IntCounter,
    pub heartbeat_closes: IntCounter,
    pub session_closes: IntCounter,
    pub refused: IntCounter,
    pub fanout_lag: Histogram,
    pub listener_reconnects: IntCounter,
}

struct Connection {
    user: Option<i64>,
    /// The session it was opened with (None: anonymous).
    session: Option<i64>,
    ip: IpAddr,
    tx: mpsc::Sender<Delivery>,
    behind: Arc<tokio::sync::Notify>,
    /// Rooms with an event dropped since the connection last caught up.
    dropped: HashSet<Arc<str>>,
    ended: CancellationToken,
    rooms: HashSet<Arc<str>>,
}

#[derive(Default)]
struct State {
    connections: HashMap<u64, Connection>,
    rooms: HashMap<Arc<str>, HashSet<u64>>,
    per_user: HashMap<i64, usize>,
    per_ip: HashMap<IpAddr, usize>,
    subscriptions: usize,
    /// Signed-in users per room, with their local connection counts.
    presence: HashMap<Arc<str>, HashMap<i64, Present>>,
    /// The newest seq routed (0 until the listener has read the database).
    cursor: i64,
}

pub struct Hub {
    state: Mutex<State>,
    /// Woken when the last connection is gone (for shutdown).
    emptied: tokio::sync::Notify,
    /// Woken when a user joins or leaves a room here (presence to write).
    pub presence_changed: tokio::sync::Notify,
    next_id: AtomicU64,
    pub limits: Limits,
    pub metrics: HubMetrics,
    /// Backlog reads (a `since` on subscribe, a catch-up) at once: each
    /// holds a pooled connection and a page of frames.
    pub backlog_reads: tokio::sync::Semaphore,
}

/// Backlog reads at once, per proxy.
const BACKLOG_READS: usize = 4;

/// Why a connection or subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyForUser,
    TooManyForAddress,
    TooManyRooms,
}

/// A live connection's place in the hub; dropping it removes everything.
pub struct Registration {
    hub: Arc<Hub>,
    pub id: u64,
    /// Notified when an event did not fit its queue: the connection reads
    /// the outbox from its last event sent.
    pub behind: Arc<tokio::sync::Notify>,
    /// Cancelled when its session ends anywhere: revoked (logout), deleted,
    /// or its user changed (role, deletion, name).
    pub ended: CancellationToken,
}

/// Who opened a connection: the signed-in user and the session they used.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub user: i64,
    pub session: i64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

impl Hub {
    pub fn new(limits: Limits, metrics: HubMetrics) -> Self {
        Self {
            state: Mutex::new(State::default()),
            emptied: tokio::sync::Notify::new(),
            presence_changed: tokio::sync::Notify::new(),
            next_id: AtomicU64::new(1),
            limits,
            metrics,
            backlog_reads: tokio::sync::Semaphore::new(BACKLOG_READS),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_sizes(&self, state: &State) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.connections.set(gauge(state.connections.len()));
        self.metrics.rooms.set(gauge(state.rooms.len()));
        self.metrics.subscriptions.set(gauge(state.subscriptions));
        self.metrics.tracked_clients.set(gauge(state.per_user.len() + state.per_ip.len() + state.presence.len()));
    }

    /// Admits a connection within the per-user and per-address caps; returns
    /// its registration and the receiving end of its bounded queue.
    pub fn connect(
        self: &Arc<Self>,
        owner: Option<Owner>,
        ip: IpAddr,
    ) -> Result<(Registration, mpsc::Receiver<Delivery>), Refusal> {
        let user = owner.map(|o| o.user);
        let mut state = self.lock();
        if user.is_some_and(|u| state.per_user.get(&u).copied().unwrap_or(0) >= self.limits.per_user) {
            self.metrics.refused.inc();
            return Err(Refusal::TooManyForUser);
        }
        if state.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_ip {
            self.metrics.refused.inc();
            return Err(Refusal::TooManyForAddress);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.limits.queue.max(1));
        let (behind, ended) = (Arc::new(tokio::sync::Notify::new()), CancellationToken::new());
        if let Some(user) = user {
            *state.per_user.entry(user).or_default() += 1;
        }
        *state.per_ip.entry(ip).or_default() += 1;
        let connection = Connection {
            user,
            session: owner.map(|o| o.session),
            ip,
            tx,
            behind: behind.clone(),
            dropped: HashSet::new(),
            ended: ended.clone(),
            rooms: HashSet::new(),
        };
        state.connections.insert(id, connection);
        self.publish_sizes(&state);
        Ok((Registration { hub: self.clone(), id, behind, ended }, rx))
    }

    /// Ends the connections whose session these events end, on this proxy
    /// (every proxy reads the same events): `session.revoked` (logout, a
    /// deleted session) ends that session's sockets, `user.updated` (a role
    /// change, a deleted or renamed account) every socket of the user, which
    /// may reconnect with what it is allowed now. Returns how many it ended.
    pub fn end_sessions(&self, events: &[Event]) -> usize {
        let ends: Vec<(Option<i64>, Option<i64>)> = events
            .iter()
            .filter_map(|e| match e.kind.as_str() {
                "session.revoked" => Some((e.session_id, None)),
                "user.updated" => Some((None, e.user_id)),
                _ => None,
            })
            .collect();
        if ends.is_empty() {
            return 0;
        }
        let state = self.lock();
        let mut ended = 0;
        for connection in state.connections.values() {
            let hit = ends.iter().any(|(session, user)| {
                (session.is_some() && *session == connection.session) || (user.is_some() && *user == connection.user)
            });
            if hit && !connection.ended.is_cancelled() {
                connection.ended.cancel();
                ended += 1;
            }
        }
        self.metrics.session_closes.inc_by(ended as u64);
        ended
    }

    fn disconnect(&self, id: u64) {
        let mut state = self.lock();
        let Some(connection) = state.connections.remove(&id) else { return };
        for room in &connection.rooms {
            self.leave(&mut state, room, id, connection.user);
        }
        if let Some(user) = connection.user {
            Self::release(&mut state.per_user, user);
        }
        Self::release(&mut state.per_ip, connection.ip);
        self.publish_sizes(&state);
        if state.connections.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Returns once no connection is open.
    pub async fn empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.lock().connections.is_empty() {
                return;
            }
            emptied.await;
        }
    }

    fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
        if let Some(n) = counts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }

    fn leave(&self, state: &mut State, room: &Arc<str>, id: u64, user: Option<i64>) {
        if let Some(members) = state.rooms.get_mut(room) {
            if members.remove(&id) {
                state.subscriptions -= 1;
            }
            if members.is_empty() {
                state.rooms.remove(room);
            }
        }
        let Some(user) = user else { return };
        let Some(users) = state.presence.get_mut(room) else { return };
        if let Some(present) = users.get_mut(&user) {
            present.connections -= 1;
            if present.connections == 0 {
                users.remove(&user);
                self.presence_changed.notify_one();
            }
        }
        if users.is_empty() {
            state.presence.remove(room);
        }
    }

    /// Every (room, user) present here, for the presence table.
    pub fn presence_snapshot(&self) -> (Vec<String>, Vec<i64>) {
        let state = self.lock();
        state.presence.iter().flat_map(|(room, users)| users.keys().map(move |u| (room.to_string(), *u))).unzip()
    }

    /// Whether `user` may send a typing indicator to `room` now (at most one
    /// per [`TYPING_EVERY`]; more are coalesced into that one).
    pub fn typing_allowed(&self, user: i64, room: &str) -> bool {
        let mut state = self.lock();
        let Some(present) = state.presence.get_mut(room).and_then(|users| users.get_mut(&user)) else { return false };
        let now = std::time::Instant::now();
        if present.last_typing.is_some_and(|last| now.duration_since(last) < TYPING_EVERY) {
            return false;
        }
        present.last_typing = Some(now);
        true
    }

    /// Whether anyone here listens to `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.lock().rooms.contains_key(room)
    }

    /// Hands an unsequenced frame (presence, typing) to a room's connections.
    pub fn broadcast(&self, room: &str, frame: Utf8Bytes) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some((room, members)) = state.rooms.get_key_value(room) else { return };
        let delivery = Delivery { room: room.clone(), seq: None, frame };
        for id in members {
            if let Some(connection) = state.connections.get_mut(id) {
                self.offer(connection, &delivery);
            }
        }
    }

    /// Queues a delivery; one that does not fit is dropped and the
    /// connection told it is behind (a sequenced event is read back from
    /// the outbox; presence and typing frames are momentary). Once a room
    /// has lost an event, its later events are not queued either until the
    /// connection catches up: delivered live, they would move the room past
    /// the gap, and the catch-up, which reads from the last event sent,
    /// would never fill it (the readers of a 5 s lock-timeout stall missed
    /// 711 events that way).
    fn offer(&self, connection: &mut Connection, delivery: &Delivery) {
        if delivery.seq.is_some() && connection.dropped.contains(&delivery.room) {
            return;
        }
        if connection.tx.try_send(delivery.clone()).is_err() {
            self.metrics.queue_drops.inc();
            if delivery.seq.is_some() {
                connection.dropped.insert(delivery.room.clone());
                connection.behind.notify_one();
            }
        }
    }

    /// The rooms in which connection `id` missed events since it last asked,
    /// and the cursor at that moment: in those rooms no event up to it was
    /// queued after the first one dropped, and every later one will be.
    pub fn take_dropped(&self, id: u64) -> (Vec<Arc<str>>, i64) {
        let mut state = self.lock();
        let cursor = state.cursor;
        let rooms = state.connections.get_mut(&id).map(|c| c.dropped.drain().collect()).unwrap_or_default();
        (rooms, cursor)
    }

    /// Joins `room`; returns the cursor at that moment: every event routed
    /// from now on has a greater seq, and the ones up to it are the backlog's.
    pub fn subscribe(&self, id: u64, room: &str) -> Result<i64, Refusal> {
        let mut state = self.lock();
        let cursor = state.cursor;
        let room: Arc<str> = state.rooms.get_key_value(room).map_or_else(|| Arc::from(room), |(k, _)| k.clone());
        let Some(connection) = state.connections.get_mut(&id) else { return Ok(cursor) };
        if connection.rooms.contains(&room) {
            return Ok(cursor);
        }
        if connection.rooms.len() >= self.limits.rooms_per_connection {
            return Err(Refusal::TooManyRooms);
        }
        connection.rooms.insert(room.clone());
        let user = connection.user;
        if let Some(user) = user.filter(|_| has_presence(&room)) {
            let present = state
                .presence
                .entry(room.clone())
                .or_default()
                .entry(user)
                .or_insert(Present { connections: 0, last_typing: None });
            present.connections += 1;
            if present.connections == 1 {
                self.presence_changed.notify_one();
            }
        }
        state.rooms.entry(room).or_default().insert(id);
        state.subscriptions += 1;
        self.publish_sizes(&state);
        Ok(cursor)
    }

    pub fn unsubscribe(&self, id: u64, room: &str) {
        let mut state = self.lock();
        let Some(connection) = state.connections.get_mut(&id) else { return };
        let user = connection.user;
        let Some(room) = connection.rooms.take(room) else { return };
        self.leave(&mut state, &room, id, user);
        self.publish_sizes(&state);
    }

    pub fn cursor(&self) -> i64 {
        self.lock().cursor
    }

    /// Starts routing after `seq` (the listener's first read of the database).
    pub fn start_at(&self, seq: i64) {
        let mut state = self.lock();
        state.cursor = state.cursor.max(seq);
    }

    /// The events after the cursor up to `seq` are gone (pruned while the
    /// listener was away): routing goes on after `seq`, and every room of
    /// every connection owes a catch-up, which finds the gap in the backlog
    /// and sends `resync`. Returns the connections told.
    pub fn skip_gap(&self, seq: i64) -> usize {
        let mut state = self.lock();
        state.cursor = state.cursor.max(seq);
        let mut told = 0;
        for connection in state.connections.values_mut() {
            if !connection.rooms.is_empty() {
                connection.dropped.extend(connection.rooms.iter().cloned());
                connection.behind.notify_one();
                told += 1;
            }
        }
        told
    }

    /// Hands each event to its room's connections, in order. A connection
    /// whose queue is full is told it is behind (see `offer`).
    pub fn route(&self, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            if event.seq <= state.cursor {
                continue;
            }
            state.cursor = event.seq;
            self.metrics.routed.inc();
            self.metrics.fanout_lag.observe(event.age_seconds.max(0.0));
            let state = &mut *state;
            let Some((room, members)) = state.rooms.get_key_value(event.room.as_str()) else { continue };
            let delivery = Delivery { room: room.clone(), seq: Some(event.seq), frame: event.frame.clone() };
            for id in members {
                if let Some(connection) = state.connections.get_mut(id) {
                    self.offer(connection, &delivery);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use prometheus::{HistogramOpts, IntCounter, IntGauge};

    use super::*;

    fn hub(queue: usize) -> Arc<Hub> {
        let gauge = |n: &str| IntGauge::new(n, n).expect("gauge");
        let counter = |n: &str| IntCounter::new(n, n).expect("counter");
        let metrics = HubMetrics {
            connections: gauge("c"),
            rooms: gauge("r"),
            subscriptions: gauge("s"),
            tracked_clients: gauge("t"),
            routed: counter("ro"),
            queue_drops: counter("q"),
            slow_closes: counter("sl"),
            catch_ups: counter("cu"),
            heartbeat_closes: counter("hb"),
            session_closes: counter("se"),
            refused: counter("re"),
            fanout_lag: Histogram::with_opts(HistogramOpts::new("l", "l")).expect("histogram"),
            listener_reconnects: counter("li"),
        };
        Arc::new(Hub::new(
            Limits {
                per_user: 2,
                per_ip: 3,
                rooms_per_connection: 2,
                queue,
                ping_every: std::time::Duration::from_secs(30),
                anonymous_presence: false,
            },
            metrics,
        ))
    }

    fn event(seq: i64, room: &str) -> Event {
        Event {
            seq,
            room: room.into(),
            kind: "reply.created".into(),
            session_id: None,
            user_id: None,
            frame: format!("{{\"id\":{seq}}}").into(),
            age_seconds: 0.0,
        }
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn caps_routing_and_cleanup() {
        let hub = hub(2);
        let owner = |session| Some(Owner { user: 1, session });
        let (alice, mut alice_queue) = hub.connect(owner(10), IP).expect("first");
        let (_second, _) = hub.connect(owner(11), IP).expect("second");
        assert_eq!(hub.connect(owner(12), IP).err(), Some(Refusal::TooManyForUser));
        let (_anonymous, _) = hub.connect(None, IP).expect("third from the address");
        assert_eq!(hub.connect(None, IP).err(), Some(Refusal::TooManyForAddress));

        assert_eq!(hub.subscribe(alice.id, "topic:1"), Ok(0));
        assert_eq!(hub.subscribe(alice.id, "topic:2"), Ok(0));
        assert_eq!(hub.subscribe(alice.id, "topic:3"), Err(Refusal::TooManyRooms));
        hub.route(&[event(1, "topic:1"), event(2, "topic:9"), event(1, "topic:1")]);
        let delivered = alice_queue.try_recv().expect("one event");
        assert_eq!((delivered.seq, &*delivered.room), (Some(1), "topic:1"));
        assert!(alice_queue.try_recv().is_err(), "other rooms and repeated seqs are not delivered");
        assert_eq!(hub.cursor(), 2);

        // A queue of 2 overflows on the third undelivered event: dropped, and the connection told it is behind.
        hub.route(&[event(3, "topic:2"), event(4, "topic:2"), event(5, "topic:2")]);
        assert_eq!(hub.metrics.queue_drops.get(), 1);
        assert!(futures_util::FutureExt::now_or_never(alice.behind.notified()).is_some(), "told it is behind");

        assert!(hub.typing_allowed(1, "topic:1"));
        assert!(!hub.typing_allowed(1, "topic:1"), "coalesced within 2 s");
        assert_eq!(hub.presence_snapshot().1, vec![1, 1]);
        drop(alice);
        drop(_second);
        drop(_anonymous);
        assert_eq!(hub.metrics.connections.get(), 0);
        assert_eq!(hub.metrics.rooms.get(), 0);
        assert_eq!(hub.metrics.subscriptions.get(), 0);
        assert_eq!(hub.metrics.tracked_clients.get(), 0, "no user, address or presence entry is left");
        assert!(hub.presence_snapshot().0.is_empty());
    }

    /// After a drop, a room's later events wait for the catch-up instead of
    /// overtaking the gap; the catch-up's cursor covers exactly those.
    #[test]
    fn a_room_that_lost_an_event_queues_nothing_more_until_caught_up() {
        let hub = hub(2);
        let (alice, mut queue) = hub.connect(Some(Owner { user: 1, session: 10 }), IP).expect("connect");
        hub.subscribe(alice.id, "topic:1").expect("room 1");
        hub.subscribe(alice.id, "topic:2").expect("room 2");
        hub.route(&[event(1, "topic:1"), event(2, "topic:1"), event(3, "topic:1")]);
        assert_eq!(hub.metrics.queue_drops.get(), 1, "the third did not fit");
        let seqs = |queue: &mut mpsc::Receiver<Delivery>| {
            std::iter::from_fn(|| queue.try_recv().ok()).map(|d| (d.seq, d.room.to_string())).collect::<Vec<_>>()
        };
        assert_eq!(seqs(&mut queue), [(Some(1), "topic:1".into()), (Some(2), "topic:1".into())]);
        // Room in the queue again, but topic:1 owes a catch-up: its event 4 is not queued; topic:2's is.
        hub.route(&[event(4, "topic:1"), event(5, "topic:2")]);
        assert_eq!(seqs(&mut queue), [(Some(5), "topic:2".into())]);
        assert_eq!(hub.take_dropped(alice.id), (vec![Arc::from("topic:1")], 5), "read back up to seq 5");
        hub.route(&[event(6, "topic:1")]);
        assert_eq!(seqs(&mut queue), [(Some(6), "topic:1".into())], "caught up: queued again");
        assert_eq!(hub.take_dropped(alice.id), (vec![], 6));
    }

    #[test]
    fn a_gap_makes_every_room_catch_up() {
        let hub = hub(8);
        let (alice, _queue) = hub.connect(Some(Owner { user: 1, session: 10 }), IP).expect("connect");
        let (_bob, _bob_queue) = hub.connect(None, IP).expect("connect");
        hub.subscribe(alice.id, "topic:1").expect("room 1");
        hub.route(&[event(1, "topic:1")]);
        assert_eq!(hub.skip_gap(40), 1, "only connections with rooms");
        assert!(futures_util::FutureExt::now_or_never(alice.behind.notified()).is_some(), "told it is behind");
        assert_eq!(hub.take_dropped(alice.id), (vec![Arc::from("topic:1")], 40));
        hub.route(&[event(30, "topic:1")]);
        assert_eq!(hub.cursor(), 40, "nothing at or below the gap is routed");
    }

    fn account_event(kind: &str, session_id: Option<i64>, user_id: Option<i64>) -> Event {
        Event { kind: kind.into(), session_id, user_id, ..event(1, "user:1") }
    }

    #[test]
    fn ended_sessions_end_their_sockets() {
        let hub = hub(8);
        let (first, _q1) = hub.connect(Some(Owner { user: 1, session: 10 }), IP).expect("first");
        let (second, _q2) = hub.connect(Some(Owner { user: 1, session: 11 }), IP).expect("second");
        let (anonymous, _q3) = hub.connect(None, IP).expect("anonymous");
        assert_eq!(
            hub.end_sessions(&[account_event("reply.created", Some(10), Some(1))]),
            0,
            "other kinds end nothing"
        );
        assert_eq!(hub.end_sessions(&[account_event("session.revoked", Some(10), Some(1))]), 1);
        assert!(first.ended.is_cancelled() && !second.ended.is_cancelled() && !anonymous.ended.is_cancelled());
        assert_eq!(
            hub.end_sessions(&[account_event("user.updated", None, Some(1))]),
            1,
            "the other session of the user"
        );
        assert!(second.ended.is_cancelled() && !anonymous.ended.is_cancelled());
        assert_eq!(hub.metrics.session_closes.get(), 2);
    }
}
