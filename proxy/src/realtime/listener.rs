//! The proxy's one dedicated connection for realtime (never pooled, never
//! through pgbouncer: `VERITABLE_LISTEN_URL`, else `DATABASE_URL`).
//!
//! Every 10 ms it asks `veritable.sequence_events()` to stamp what finished
//! writers left in the outbox (one proxy at a time gets to; the others get
//! NULL at once), and whenever that stamps something, a `veritable_events`
//! notification arrives, or a second passes, it reads `seq > cursor` in order
//! and routes the rows to the hub. The cursor is the hub's: after a dropped
//! connection or a PostgreSQL restart it reconnects with backoff and catches
//! up from there, so nothing is skipped or repeated.
//!
//! About once a second it records that cursor under the proxy's name in
//! `listener_cursors`, and pruning keeps every event above the lowest live
//! cursor. A listener away for longer than the backlog (an hour) is no
//! longer waited for: when it comes back and finds events it never read
//! pruned, it routes on after the gap and every subscriber of this proxy
//! is sent `resync` for its rooms (their backlog has the same gap).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use super::hub::{Event, Hub};

const SEQUENCE_EVERY: Duration = Duration::from_millis(10);
const READ_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
const BATCH: i64 = 1_000;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// At most this between attempts, so the listener is back within about a
/// second of the database (it was 10 s, which delayed every event by up to
/// that much after a restart).
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How often a connected listener records its cursor (listener_cursors),
/// which holds pruning back.
const RECORD_EVERY: Duration = Duration::from_secs(1);
const RECORD: &str = "INSERT INTO listener_cursors AS c (listener, seq) VALUES ($1, $2)
   ON CONFLICT (listener) DO UPDATE SET seq = EXCLUDED.seq, seen_at = now()";
const READ: &str = "SELECT seq, room,
        json_build_object('type', 'event', 'room', room, 'id', seq, 'kind', kind, 'data', payload)::text,
        extract(epoch FROM clock_timestamp() - created_at)::float8,
        kind, (payload->>'session_id')::bigint, (payload->>'user_id')::bigint
   FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Runs until `cancel`. Presence notifications go to `presence` (the
/// presence task reads the room), typing frames straight to the hub.
pub async fn run(
    hub: Arc<Hub>,
    name: String,
    config: tokio_postgres::Config,
    presence: mpsc::Sender<String>,
    invalidation: super::Invalidation,
    cancel: CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut first = true;
    // An outage is logged when it starts and when it ends, not per attempt.
    let mut down_since: Option<(tokio::time::Instant, u32)> = None;
    loop {
        let connected = |down: &mut Option<(tokio::time::Instant, u32)>| {
            if let Some((since, attempts)) = down.take() {
                let down_ms = since.elapsed().as_millis() as u64;
                tracing::info!(attempts, down_ms, "realtime listener reconnected");
            }
        };
        let outcome = session(&hub, &name, &config, &presence, &invalidation, &cancel, first, || {
            backoff = BACKOFF_FIRST;
            connected(&mut down_since);
        })
        .await;
        match outcome {
            Ok(()) => return,
            Err(error) => {
                first = false;
                hub.metrics.listener_reconnects.inc();
                match &mut down_since {
                    None => {
                        tracing::warn!(%error, "realtime listener lost its connection; reconnecting");
                        down_since = Some((tokio::time::Instant::now(), 1));
                    }
                    Some((_, attempts)) => {
                        *attempts += 1;
                        tracing::debug!(%error, retry_in_ms = backoff.as_millis() as u64, "realtime listener: still no connection");
                    }
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A typing frame from any proxy, for this proxy's subscribers of its room.
fn typing(hub: &Hub, payload: &str) {
    let room = serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|frame| frame.get("room").and_then(|r| r.as_str()).map(str::to_owned));
    if let Some(room) = room {
        hub.broadcast(&room, payload.to_owned().into());
    }
}

/// One connection's life: Ok when cancelled, Err when the connection failed.
#[allow(clippy::too_many_arguments)]
async fn session(
    hub: &Arc<Hub>,
    name: &str,
    config: &tokio_postgres::Config,
    presence: &mpsc::Sender<String>,
    invalidation: &super::Invalidation,
    cancel: &CancellationToken,
    first: bool,
    on_connected: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.application_name("veritable-listener");
    let (client, mut connection) = config.connect(NoTls).await?;
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let (typing_hub, presence) = (hub.clone(), presence.clone());
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => match note.channel() {
                    // Coalesced: one pending wake-up is enough.
                    "veritable_events" => drop(wake_tx.try_send(())),
                    // Dropped when the presence task is behind: the next refresh heals it.
                    "veritable_presence" => drop(presence.try_send(note.payload().to_owned())),
                    "veritable_typing" => typing(&typing_hub, note.payload()),
                    _ => {}
                },
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    let outcome = async {
        client.batch_execute("LISTEN veritable_events; LISTEN veritable_presence; LISTEN veritable_typing").await?;
        if first && hub.cursor() == 0 {
            // A new proxy starts at the present; older events are read per
            // subscription (`since`).
            let newest: i64 =
                client.query_one("SELECT coalesce(max(seq), 0) FROM events WHERE seq IS NOT NULL", &[]).await?.get(0);
            hub.start_at(newest);
        } else if let Some(oldest) = client
            .query_one(crate::store::realtime::OLDEST.text, &[])
            .await?
            .get::<_, Option<i64>>(0)
            .filter(|oldest| *oldest > hub.cursor() + 1)
        {
            let cursor = hub.cursor();
            let told = hub.skip_gap(oldest - 1);
            tracing::warn!(
                cursor,
                oldest,
                told,
                "events this listener never read were pruned while it was away; its subscribers resync"
            );
        }
        let sequence = client.prepare("SELECT veritable.sequence_events()").await?;
        let read = client.prepare(READ).await?;
        let record = client.prepare(RECORD).await?;
        client.execute(&record, &[&name, &hub.cursor()]).await?;
        let mut recorded = tokio::time::Instant::now();
        on_connected();
        let mut tick = tokio::time::interval(SEQUENCE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = tokio::time::Instant::now();
        loop {
            let due = tokio::select! {
                () = cancel.cancelled() => {
                    // A clean stop holds pruning back no longer.
                    let _ = client.execute("DELETE FROM listener_cursors WHERE listener = $1", &[&name]).await;
                    return Ok(());
                }
                _ = tick.tick() => {
                    let stamped: Option<i64> = client.query_one(&sequence, &[]).await?.get(0);
                    stamped.is_some() || last_read.elapsed() >= READ_AT_LEAST_EVERY
                }
                woken = wake.recv() => {
                    if woken.is_none() {
                        anyhow::bail!("the listener connection closed");
                    }
                    true
                }
            };
            if due {
                last_read = tokio::time::Instant::now();
                loop {
                    let rows = client.query(&read, &[&hub.cursor(), &BATCH]).await?;
                    let events: Vec<Event> = rows
                        .iter()
                        .map(|row| Event {
                            seq: row.get(0),
                            room: row.get(1),
                            frame: row.get::<_, String>(2).into(),
                            age_seconds: row.get(3),
                            kind: row.get(4),
                            session_id: row.get(5),
                            user_id: row.get(6),
                        })
                        .collect();
                    hub.route(&events);
                    // Caches first: a socket ended here and reopened at once
                    // must not find its revoked session still cached.
                    invalidation.apply(&events).await;
                    hub.end_sessions(&events);
                    if i64::try_from(events.len()).unwrap_or(0) < BATCH {
                        break;
                    }
                }
                if recorded.elapsed() >= RECORD_EVERY {
                    client.execute(&record, &[&name, &hub.cursor()]).await?;
                    recorded = tokio::time::Instant::now();
                }
            }
        }
    }
    .await;
    driver.abort();
    outcome
}
