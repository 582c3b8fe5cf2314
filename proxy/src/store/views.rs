//! Topic views, counted in memory and written in batches, so reading a topic
//! never writes its row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Db;

/// Topic views counted in memory and added to `forum_topics.view_count` in
/// one statement per flush. Bounded: at most `capacity` distinct topics
/// wait; a view of a further topic while full is dropped (and counted in
/// `veritable_topic_views_dropped_total`) and wakes the flusher early. A
/// failed flush puts its counts back, within the same bound.
pub struct Views {
    pending: Mutex<HashMap<i64, i64>>,
    capacity: usize,
    wake: Notify,
    flushed: IntCounter,
    dropped: IntCounter,
}

impl Views {
    pub fn new(capacity: usize, flushed: IntCounter, dropped: IntCounter) -> Self {
        Self { pending: Mutex::new(HashMap::new()), capacity, wake: Notify::new(), flushed, dropped }
    }

    pub fn count(&self, topic: i64) {
        self.add(topic, 1);
    }

    fn add(&self, topic: i64, n: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = pending.get_mut(&topic) {
            *count += n;
        } else if pending.len() < self.capacity {
            pending.insert(topic, n);
            if pending.len() == self.capacity {
                self.wake.notify_one();
            }
        } else {
            self.dropped.inc_by(u64::try_from(n).unwrap_or(0));
            self.wake.notify_one();
        }
    }

    /// Views waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    async fn flush(&self, db: &Db) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let (ids, counts): (Vec<i64>, Vec<i64>) = batch.iter().map(|(id, n)| (*id, *n)).unzip();
        let outcome = match db.get().await {
            Ok(conn) => conn.topic_views_flush(&ids, &counts).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(_) => self.flushed.inc_by(counts.iter().map(|n| u64::try_from(*n).unwrap_or(0)).sum()),
            Err(error) => {
                tracing::warn!(%error, topics = ids.len(), "could not write topic views; keeping them for the next flush");
                for (id, n) in batch {
                    self.add(id, n);
                }
            }
        }
    }

    /// Flushes every `every` (or sooner when full) until `cancel`, then once more.
    pub async fn run(self: Arc<Self>, db: Db, every: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(every) => {}
                () = self.wake.notified() => {}
            }
            self.flush(&db).await;
        }
        self.flush(&db).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_batch_is_bounded_and_counts_what_it_drops() {
        let (flushed, dropped) =
            (IntCounter::new("f", "f").expect("counter"), IntCounter::new("d", "d").expect("counter"));
        let views = Views::new(2, flushed, dropped.clone());
        for topic in [1, 1, 2, 2, 2] {
            views.count(topic);
        }
        assert_eq!(views.pending(), 2);
        views.count(3);
        views.count(3);
        assert_eq!(
            (views.pending(), dropped.get()),
            (2, 2),
            "a third topic does not fit; its views are counted as dropped"
        );
        views.count(1);
        assert_eq!(dropped.get(), 2, "topics already waiting still count");
    }
}
