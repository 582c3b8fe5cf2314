//! The delivery check: every reply the HTTP users had acknowledged in a
//! watched room, against what each socket in that room received.
//!
//! The sockets subscribe before the load starts, so every acknowledged reply
//! committed after their subscription point and each socket must receive it
//! exactly once, in seq order, across any number of reconnects. Replies that
//! committed but whose answer was lost (a timeout) may arrive unacknowledged;
//! they are counted, not failed.

use std::collections::HashMap;

use serde::Serialize;

use crate::http::Ack;
use crate::sockets::SocketLog;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Delivery {
    pub sockets: usize,
    pub rooms_watched: usize,
    /// Acknowledged replies in watched rooms, once per watching socket.
    pub expected: u64,
    pub delivered: u64,
    pub missed: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Reply events with no acknowledgement (their answer timed out).
    pub unacknowledged: u64,
    pub resyncs: u64,
    pub reconnects: u64,
    /// Connection attempts refused (and retried), the first ones included.
    pub refused_connects: u64,
    pub socket_errors: u64,
    /// Why connections ended before the run did (close code or error), counted.
    pub closes: std::collections::BTreeMap<String, u64>,
    /// From the end of the load until every owed event had arrived (or `--drain` ran out).
    pub drain_secs: f64,
}

impl Delivery {
    pub fn passed(&self) -> bool {
        self.missed == 0 && self.duplicated == 0 && self.out_of_order == 0
    }
}

/// Acknowledged replies per topic.
pub fn by_topic(acks: &[Ack]) -> HashMap<i64, Vec<i64>> {
    let mut map: HashMap<i64, Vec<i64>> = HashMap::new();
    for ack in acks {
        map.entry(ack.topic).or_default().push(ack.reply);
    }
    for replies in map.values_mut() {
        replies.sort_unstable();
    }
    map
}

/// How many deliveries the sockets owe in total (for the drain's progress).
pub fn owed(acked: &HashMap<i64, Vec<i64>>, rooms: &[Vec<i64>]) -> u64 {
    rooms.iter().flatten().map(|t| acked.get(t).map_or(0, Vec::len) as u64).sum()
}

pub fn check(acked: &HashMap<i64, Vec<i64>>, sockets: &[(Vec<i64>, SocketLog)]) -> Delivery {
    let mut d = Delivery { sockets: sockets.len(), ..Delivery::default() };
    for (n, (rooms, log)) in sockets.iter().enumerate() {
        d.rooms_watched += rooms.len();
        d.reconnects += log.reconnects;
        d.refused_connects += log.refused;
        d.socket_errors += log.errors;
        for (reason, n) in &log.closes {
            *d.closes.entry(reason.clone()).or_default() += n;
        }
        for topic in rooms {
            let expected = acked.get(topic).map_or(&[][..], Vec::as_slice);
            let empty = crate::sockets::RoomLog::default();
            let room = log.rooms.get(topic).unwrap_or(&empty);
            let mut received = room.replies.clone();
            received.sort_unstable();
            received.dedup();
            d.expected += expected.len() as u64;
            let got = expected.iter().filter(|r| received.binary_search(r).is_ok()).count() as u64;
            d.delivered += got;
            d.missed += expected.len() as u64 - got;
            let missing: Vec<i64> = expected.iter().copied().filter(|r| received.binary_search(r).is_err()).collect();
            if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
                // Where to look: which room, and which replies (ids grow with time).
                eprintln!(
                    "veritable-load: socket {n}, topic {topic}: {} of {} acknowledged replies never arrived (ids {first}..={last}; received up to {:?})",
                    missing.len(),
                    expected.len(),
                    received.last()
                );
            }
            d.unacknowledged += received.iter().filter(|r| expected.binary_search(r).is_err()).count() as u64;
            d.duplicated += room.duplicates;
            d.out_of_order += room.out_of_order;
            d.resyncs += room.resyncs;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_reply_fails_and_an_unacknowledged_one_does_not() {
        let acks = [Ack { topic: 1, reply: 10 }, Ack { topic: 1, reply: 11 }, Ack { topic: 2, reply: 12 }];
        let acked = by_topic(&acks);
        let mut full = SocketLog::default();
        full.rooms.entry(1).or_default().replies = vec![10, 11, 99];
        let mut short = SocketLog::default();
        short.rooms.entry(1).or_default().replies = vec![11];
        let ok = check(&acked, &[(vec![1], full)]);
        assert!(ok.passed());
        assert_eq!((ok.expected, ok.delivered, ok.unacknowledged), (2, 2, 1));
        let bad = check(&acked, &[(vec![1, 2], short)]);
        assert_eq!((bad.expected, bad.missed), (3, 2));
        assert!(!bad.passed());
        assert_eq!(owed(&acked, &[vec![1, 2], vec![2]]), 4);
    }
}
