//! Presence across proxies, and typing indicators.
//!
//! Each proxy writes the (room, user) pairs present on it to the `presence`
//! table (migration 013) whenever they change and every third of the TTL;
//! `veritable.presence_sync` also removes other proxies' expired rows, so a
//! proxy that died leaves its users listed for at most one TTL (60 s by
//! default), and notifies `veritable_presence` with each changed room. On
//! that notification every proxy sends the room's local subscribers a fresh
//! snapshot: `{"type":"presence","room":...,"users":[{"id","username"}]}`.
//!
//! Typing: `{"op":"typing","room":...}` from a signed-in subscriber goes out
//! as one `veritable_typing` notification (at most one per user and room per
//! 2 s) carrying the frame every proxy hands its subscribers; clients show it
//! for `expires_in_ms` (5 s).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use crate::store::Db;

pub const TYPING_SHOWN_MS: u64 = 5_000;

/// The presence snapshot frame of `room`, `users` being the JSON array.
pub fn frame(room: &str, users: &str) -> serde_json::Value {
    let users: serde_json::Value = serde_json::from_str(users).unwrap_or_else(|_| serde_json::json!([]));
    serde_json::json!({ "type": "presence", "room": room, "users": users })
}

#[derive(serde::Deserialize)]
struct Member {
    id: i64,
    username: String,
}

/// A room's members by id, as last read.
type Members = BTreeMap<i64, String>;

fn members(users: &str) -> Members {
    serde_json::from_str::<Vec<Member>>(users).unwrap_or_default().into_iter().map(|m| (m.id, m.username)).collect()
}

/// The frame telling subscribers how `room` went from `before` to `now`;
/// None when nothing changed.
fn change_frame(room: &str, before: &Members, now: &Members) -> Option<serde_json::Value> {
    let listed = |from: &Members, without: &Members| -> Vec<serde_json::Value> {
        from.iter()
            .filter(|(id, _)| !without.contains_key(id))
            .map(|(id, username)| serde_json::json!({ "id": id, "username": username }))
            .collect()
    };
    let (joined, left) = (listed(now, before), listed(before, now));
    (!joined.is_empty() || !left.is_empty())
        .then(|| serde_json::json!({ "type": "presence", "room": room, "joined": joined, "left": left }))
}

/// Keeps this proxy's rows true and pushes snapshots of changed rooms, until
/// `cancel`; then removes this proxy's rows.
pub async fn run(
    hub: Arc<Hub>,
    db: Db,
    proxy: String,
    ttl: Duration,
    mut changed_rooms: mpsc::Receiver<String>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last reading of each room with local subscribers (bounded by the hub's rooms).
    let mut known: HashMap<String, Members> = HashMap::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                known.retain(|room, _| hub.has_room(room));
                sync(&hub, &db, &proxy, ttl, false).await;
            }
            () = hub.presence_changed.notified() => sync(&hub, &db, &proxy, ttl, false).await,
            Some(room) = changed_rooms.recv() => push(&hub, &db, &mut known, room).await,
        }
    }
    sync(&hub, &db, &proxy, ttl, true).await;
}

async fn sync(hub: &Hub, db: &Db, proxy: &str, ttl: Duration, leaving: bool) {
    let (rooms, users) = if leaving { (Vec::new(), Vec::new()) } else { hub.presence_snapshot() };
    let outcome = match db.get().await {
        Ok(conn) => conn.presence_sync(proxy, &rooms, &users, ttl.as_secs_f64()).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = outcome {
        tracing::warn!(%error, "could not write presence; retrying at the next change or refresh");
    }
}

async fn push(hub: &Hub, db: &Db, known: &mut HashMap<String, Members>, room: String) {
    if !hub.has_room(&room) {
        known.remove(&room);
        return;
    }
    let users = match db.get().await {
        Ok(conn) => conn.presence_of(&room).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let users = match users {
        Ok(users) => users,
        Err(error) => {
            // Without a reading the next change is sent as a snapshot.
            known.remove(&room);
            return tracing::warn!(%error, room, "could not read presence");
        }
    };
    let now = members(&users);
    let update = match known.get(&room) {
        Some(before) => change_frame(&room, before, &now),
        None => Some(frame(&room, &users)),
    };
    if let Some(update) = update {
        hub.broadcast(&room, update.to_string().into());
    }
    known.insert(room, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_list_who_joined_and_who_left() {
        let before = members(r#"[{"id":1,"username":"ann"},{"id":2,"username":"bob"}]"#);
        let now = members(r#"[{"id":2,"username":"bob"},{"id":3,"username":"cy"}]"#);
        let change = change_frame("topic:1", &before, &now).expect("a change");
        assert_eq!(change["joined"], serde_json::json!([{ "id": 3, "username": "cy" }]));
        assert_eq!(change["left"], serde_json::json!([{ "id": 1, "username": "ann" }]));
        assert_eq!(change_frame("topic:1", &now, &now), None, "nothing changed, nothing sent");
        assert!(members("not json").is_empty());
    }
}
