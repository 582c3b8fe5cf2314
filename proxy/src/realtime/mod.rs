//! Realtime: the outbox, sequenced in commit-safe order, fanned out to
//! WebSocket rooms. See `listener` (PostgreSQL side), `hub` (rooms) and `ws`
//! (the protocol).

pub mod hub;
pub mod listener;
pub mod presence;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use tokio_util::sync::CancellationToken;

use hub::{Hub, HubMetrics, Limits};

/// What the WebSocket handler needs; one per server.
pub struct Realtime {
    pub hub: Arc<Hub>,
    pub allowed_origins: Vec<String>,
    /// Cancelled when the server shuts down: every socket closes with 1001.
    pub shutdown: CancellationToken,
}

/// What the event stream makes stale in this proxy's caches: list pages and
/// reply trees on any topic or reply change (at most every refresh), a wiki page on its own changes, a session when
/// it is revoked anywhere, a user's sessions when their role or account
/// changes.
pub struct Invalidation {
    pub responses: Arc<crate::cache::ResponseCache>,
    pub sessions: Arc<crate::sessions::Sessions>,
}

impl Invalidation {
    pub async fn apply(&self, events: &[hub::Event]) {
        let mut lists = false;
        for event in events {
            match event.kind.as_str() {
                "session.revoked" => event.session_id.into_iter().for_each(|id| self.sessions.forget_session(id)),
                "user.updated" => event.user_id.into_iter().for_each(|id| self.sessions.forget_user(id)),
                kind if kind.starts_with("wiki.") => self.responses.page_changed(&event.room).await,
                kind => lists |= kind.starts_with("topic.") || kind.starts_with("reply."),
            }
        }
        if lists {
            self.responses.lists_changed();
        }
    }
}

/// Outbox rows are kept this long (the `since` backlog needs 10 minutes; a
/// listener cut off for longer than this would skip what was pruned).
const KEEP_EVENTS: &str = "1 hour";
/// A pruning round this often: at 1,000 events/s a round has ~10,000 rows to
/// delete, never the minutes' worth that a 5-minute round piled up (each such
/// round took a core for seconds and post batches waited past their bound).
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Rows per pruning statement: a few milliseconds each, so writers never wait on it.
const PRUNE_BATCH: u64 = 1000;
/// After a full batch the pruner rests this many times as long as the batch
/// took, with its pooled connection given back: pruning holds at most a fifth
/// of one connection and one core, whatever the backlog (a database that
/// comes back after a day is caught up gradually rather than at once).
const PRUNE_REST: u32 = 4;

/// Deletes outbox rows older than [`KEEP_EVENTS`] until `cancel` (every proxy
/// does; the statement is idempotent): a round every [`PRUNE_EVERY`], each in
/// batches of [`PRUNE_BATCH`] until a short one, paced by [`PRUNE_REST`].
pub async fn prune(db: crate::store::Db, cancel: CancellationToken) {
    let statement = format!("SELECT veritable.prune_events(interval '{KEEP_EVENTS}', {PRUNE_BATCH})");
    loop {
        if !rest(&cancel, PRUNE_EVERY).await {
            return;
        }
        loop {
            let started = std::time::Instant::now();
            let deleted = match prune_batch(&db, &statement).await {
                Ok(deleted) => deleted,
                Err(error) => {
                    tracing::warn!(%error, "could not prune old events; trying again next round");
                    break;
                }
            };
            if deleted < PRUNE_BATCH || !rest(&cancel, started.elapsed() * PRUNE_REST).await {
                break;
            }
        }
    }
}

/// Waits `period` unless cancelled first (false).
async fn rest(cancel: &CancellationToken, period: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(period) => true,
    }
}

/// One pruning statement on a pooled connection held only for it; the rows deleted.
async fn prune_batch(db: &crate::store::Db, statement: &str) -> Result<u64, String> {
    let conn = db.pool().get().await.map_err(|e| e.to_string())?;
    let answer = conn.simple_query(statement).await.map_err(|e| e.to_string())?;
    Ok(answer
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse::<u64>().ok(),
            _ => None,
        })
        .unwrap_or(0))
}

/// Fan-out lag buckets, seconds.
const LAG_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub fn metrics(registry: &Registry) -> Result<HubMetrics, prometheus::Error> {
    let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
        let g = IntGauge::new(name, help)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
        let c = IntCounter::new(name, help)?;
        registry.register(Box::new(c.clone()))?;
        Ok(c)
    };
    let fanout_lag = Histogram::with_opts(
        HistogramOpts::new("ws_fanout_lag_seconds", "From an event's write to its routing to local rooms")
            .buckets(LAG_BUCKETS.to_vec()),
    )?;
    registry.register(Box::new(fanout_lag.clone()))?;
    Ok(HubMetrics {
        connections: gauge("ws_connections", "Open WebSocket connections")?,
        rooms: gauge("ws_rooms", "Rooms with at least one local subscriber")?,
        subscriptions: gauge("ws_subscriptions", "Room subscriptions of open connections")?,
        tracked_clients: gauge("ws_tracked_clients", "Users and addresses with open connections (for the caps)")?,
        routed: counter("ws_events_routed_total", "Sequenced events routed to local rooms")?,
        queue_drops: counter("ws_queue_drops_total", "Events that did not fit a connection's queue")?,
        slow_closes: counter("ws_slow_consumer_closes_total", "Connections closed (1013) for not keeping up")?,
        catch_ups: counter(
            "ws_catch_ups_total",
            "Times a connection's queue overflowed and it read the missed events back from the outbox",
        )?,
        heartbeat_closes: counter("ws_heartbeat_closes_total", "Connections closed after two unanswered pings")?,
        session_closes: counter("ws_session_closes_total", "Connections closed (4401) because their session ended")?,
        refused: counter("ws_refused_total", "Connections refused at the per-user or per-address cap")?,
        fanout_lag,
        listener_reconnects: counter("ws_listener_reconnects_total", "Reconnections of the realtime listener")?,
    })
}

impl Realtime {
    pub fn new(limits: Limits, metrics: HubMetrics, allowed_origins: Vec<String>, shutdown: CancellationToken) -> Self {
        Self { hub: Arc::new(Hub::new(limits, metrics)), allowed_origins, shutdown }
    }

    /// After shutdown was signalled: waits (at most `limit`) for every
    /// socket to have sent its close frame and gone.
    pub async fn drain(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.hub.empty()).await;
    }
}
