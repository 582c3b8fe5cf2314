//! Reply posts, committed in groups. Concurrent `POST .../replies` requests
//! are gathered into one `reply_create` statement: one transaction, one
//! commit, one trigger invocation per batch instead of per reply
//! (BENCHMARKS.md, "The write path").
//!
//! There is no timer: a batch is whatever waited while the previous batches
//! ran. At most `batches` statements run at once; a post that finds nothing
//! in flight and nobody waiting goes out alone at once, from its own task (so
//! a lone post waits for nobody and crosses no task), and posts that arrive
//! while statements run leave together, up to `max_rows`, as soon as a slot
//! is free. (Letting a post go alone whenever a slot was free made 56% of the
//! batches single rows under load, the costliest way to write a reply.)
//!
//! Bounds: the queue holds `queue` posts (a full queue answers 503 at once);
//! a post that waited longer than its bound before its batch left is
//! answered 503 + Retry-After without being written, like a request that
//! waited too long for a pooled connection, and while the batch waits for a
//! connection each of its posts whose bound passes is answered so then (the
//! younger ones wait on), so an admitted post starts within its bound of its
//! arrival, and one old post does not fail its batch. The bound is `max_wait`,
//! long enough to ride out a commit stall; but a queue that has not emptied
//! for `max_wait` is not a burst, it is more posts than PostgreSQL takes
//! (CoDel's "standing queue"), and posts that arrive while it stands get a
//! quarter of it, and batches are cut to `standing_rows` (16): the surplus is
//! refused sooner and the posts admitted are answered sooner (the ramp in
//! BENCHMARKS.md: past the knee the admitted p99 halved). Each
//! post gets its own outcome:
//! a rate-limited author, a locked topic or a foreign parent never fails a
//! neighbour. A batch that PostgreSQL refuses as a whole (a body the
//! sanitizer refuses, a parent deleted meanwhile) is tried again one post at
//! a time, so only the guilty post gets the error.
//!
//! A batch waits for no lock another transaction holds long (a topic taken
//! `FOR UPDATE` by a DBA, a parent deleted in an open transaction): its posts
//! to such a topic or parent come back `held` (sql/functions/020_replies.sql),
//! and each is then posted alone, after the batch's slot is free, on its own
//! connection, waiting for the lock up to the role's `lock_timeout` (5 s)
//! and answered 503 `row_locked` past it. At most `lock_waiters` such posts
//! wait at once; more are answered 503 `row_locked` at once. So a stuck lock
//! fails the posts that need it, and nobody else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{PoolError, TimeoutType};
use prometheus::{Histogram, IntCounter};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppError;
use crate::http::error::{lock_not_available, refused};
use crate::store::forums::{NewReplies, ReplyOutcome};
use crate::store::ids::{ReplyId, TopicId, UserId};
use crate::store::{Conn, Db};

/// How batches are formed; from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Statements in flight at once (each holds one pooled connection).
    pub batches: usize,
    /// Replies in one statement at most.
    pub max_rows: usize,
    /// Replies in one statement at most while the queue stands (overload):
    /// a shorter statement answers the admitted posts sooner.
    pub standing_rows: usize,
    /// Posts waiting at most; more are answered 503 at once.
    pub queue: usize,
    /// Longest wait in the queue before a post is answered 503 unwritten.
    pub max_wait: Duration,
    pub per_minute: i32,
    /// Held posts waiting for a lock at once, each alone (the rest: 503).
    pub lock_waiters: usize,
}

/// One post, as the handler hands it over.
pub struct Post {
    pub topic: TopicId,
    pub parent: Option<ReplyId>,
    pub author: UserId,
    pub body: String,
    /// The author's posting-limit key.
    pub key: String,
}

struct Job {
    post: Post,
    queued: Instant,
    /// When it must have started (queue and checkout), set on admission.
    start_by: Instant,
    done: oneshot::Sender<Result<ReplyOutcome, AppError>>,
}

/// Batch sizes and fallbacks, registered by [`crate::metrics::Metrics`].
#[derive(Clone)]
pub struct PostingMetrics {
    pub batch_rows: Histogram,
    pub fallbacks: IntCounter,
    pub expired: IntCounter,
    /// Posts left out of their batch by a locked topic or parent.
    pub held: IntCounter,
    /// Held posts refused at once: every lock waiter was taken.
    pub held_refused: IntCounter,
}

/// The handlers' side: a bounded queue to the batching task, and the slots
/// (statements in flight) it shares with posts that go out alone.
#[derive(Clone)]
pub struct Posting {
    queue: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    batches: Batches,
}

/// What runs a batch: shared by the gathering task and lone posts.
#[derive(Clone)]
struct Batches {
    db: Db,
    per_minute: i32,
    /// A post's whole wait before its statement starts: queue and checkout.
    max_wait: Duration,
    metrics: PostingMetrics,
    /// Statements in flight, however they started.
    running: Arc<AtomicUsize>,
    /// Held posts waiting for their lock, each alone.
    waiters: Arc<Semaphore>,
}

impl Posting {
    /// The queue, and the task that drains it into batches until `cancel`
    /// (spawned on `tasks`, as are the batches it starts).
    pub fn start(
        db: Db,
        settings: Settings,
        metrics: PostingMetrics,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        let (queue, jobs) = mpsc::channel(settings.queue.max(1));
        let slots = Arc::new(Semaphore::new(settings.batches.max(1)));
        let batches = Batches {
            db,
            per_minute: settings.per_minute,
            max_wait: settings.max_wait,
            metrics,
            running: Arc::new(AtomicUsize::new(0)),
            waiters: Arc::new(Semaphore::new(settings.lock_waiters.max(1))),
        };
        tasks.spawn(gather(batches.clone(), settings, slots.clone(), jobs, tasks.clone(), cancel));
        Self { queue, slots, batches }
    }

    /// Posts waiting for a batch.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Posts one reply and waits for its own outcome.
    pub async fn post(&self, post: Post) -> Result<ReplyOutcome, AppError> {
        if crate::store::in_request_transaction() {
            return self.post_in_transaction(post).await;
        }
        let (done, outcome) = oneshot::channel();
        let queued = Instant::now();
        let job = Job { post, queued, start_by: queued + self.batches.max_wait, done };
        // Nothing in flight, nobody waiting: a batch of one, from this task.
        let idle = self.queued() == 0 && self.batches.running.load(Ordering::Acquire) == 0;
        let alone = if idle { self.slots.clone().try_acquire_owned().ok() } else { None };
        if let Some(slot) = alone {
            let held = self.batches.run(vec![job]).await;
            drop(slot);
            self.batches.post_held(held).await;
        } else {
            self.queue.try_send(job).map_err(|_| AppError::Busy)?;
        }
        // Dropped unanswered only when the server is shutting down.
        outcome.await.unwrap_or(Err(AppError::Busy))
    }
}

impl Posting {
    /// A post of an idempotent request: written alone, in the request's
    /// own transaction (with its key), not in a batch whose commit other
    /// users' posts share.
    async fn post_in_transaction(&self, post: Post) -> Result<ReplyOutcome, AppError> {
        self.batches.alone(&post).await
    }
}

/// Takes a free statement slot, then every post waiting (up to `max_rows`),
/// and runs them as one batch.
async fn gather(
    batches: Batches,
    settings: Settings,
    slots: Arc<Semaphore>,
    mut jobs: mpsc::Receiver<Job>,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    let max_rows = settings.max_rows.max(1);
    let mut queue = Standing::new(settings.max_wait);
    loop {
        let slot = tokio::select! {
            () = cancel.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let idle = jobs.is_empty() && !queue.refusing;
        let first = tokio::select! {
            () = cancel.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        // Empty until this post arrived (an idle spell is not a standing
        // queue: counting it as one refused the first posts after a start).
        if idle {
            queue.observe(true, Instant::now());
        }
        let mut batch = Vec::with_capacity(max_rows.min(64));
        let mut refused = !queue.admit(first, &mut batch, &batches.metrics);
        let mut drained = false;
        let rows = queue.rows(max_rows, settings.standing_rows);
        while batch.len() < rows {
            match jobs.try_recv() {
                Ok(job) => refused |= !queue.admit(job, &mut batch, &batches.metrics),
                Err(_) => {
                    drained = true;
                    break;
                }
            }
        }
        // Emptied by refusing posts that waited too long is not emptied.
        queue.refusing = refused;
        queue.observe(drained && !refused, Instant::now());
        if batch.is_empty() {
            continue;
        }
        let batches = batches.clone();
        tasks.spawn(async move {
            let held = batches.run(batch).await;
            drop(slot);
            batches.post_held(held).await;
        });
    }
}

/// Whether the queue is a burst or a standing queue, and so how long a
/// post may wait in it.
struct Standing {
    max_wait: Duration,
    /// When the gathering last found the queue empty, moved later by the
    /// stalls since (the standing clock counts only time in which
    /// statements kept finishing).
    drained_at: Instant,
    /// When the last gathering was.
    gathered_at: Instant,
    /// When the queue, not empty since `drained_at`, became a standing one.
    since: Option<Instant>,
    /// Whether the last gathering refused posts that waited too long: the
    /// queue it left empty is still an overloaded one (counting it as
    /// emptied made the bound flip back to `max_wait` again and again past
    /// the ramp's knee).
    refusing: bool,
}

impl Standing {
    fn new(max_wait: Duration) -> Self {
        let now = Instant::now();
        Self { max_wait, drained_at: now, gathered_at: now, since: None, refusing: false }
    }

    /// After each gathering: whether it left the queue empty.
    ///
    /// A gathering waits for a free statement slot, so gatherings further
    /// apart than half of `max_wait` mean that no statement finished
    /// meanwhile: a stall (of the disk's flush, of the machine), not more
    /// posts than PostgreSQL takes (under overload the two statements in
    /// flight finish every 30-50 ms). The queue a stall builds is drained
    /// as fast as PostgreSQL goes once it is over, so only the first half
    /// of such a gap counts towards a standing queue (counting all of it
    /// refused posts after 50 ms behind a 250 ms stall: RELIABILITY.md, the
    /// stall fault); under overload statements keep finishing and the
    /// clock runs as before.
    fn observe(&mut self, drained: bool, now: Instant) {
        let stalled = now.saturating_duration_since(self.gathered_at).saturating_sub(self.max_wait / 2);
        self.gathered_at = now;
        if drained {
            self.drained_at = now;
            self.since = None;
        } else if self.since.is_none() {
            self.drained_at = (self.drained_at + stalled).min(now);
            if now.duration_since(self.drained_at) >= self.max_wait {
                self.since = Some(now);
            }
        }
    }

    /// Rows for the next batch: `max_rows`, or `standing_rows` while the
    /// queue stands (a shorter statement answers the admitted posts sooner).
    fn rows(&self, max_rows: usize, standing_rows: usize) -> usize {
        if self.since.is_some() { standing_rows.clamp(1, max_rows) } else { max_rows }
    }

    /// A post's wait bound: `max_wait`, or a quarter of it for a post that
    /// arrived while the queue stood (posts from before keep theirs: a
    /// commit stall's posts are not refused for the queue the stall built).
    fn bound(&self, queued: Instant) -> Duration {
        match self.since {
            Some(since) if queued >= since => self.max_wait / 4,
            _ => self.max_wait,
        }
    }

    /// Adds `job` to `batch`, unless it waited past its bound: then it is
    /// answered 503 unwritten (and false is returned).
    fn admit(&self, mut job: Job, batch: &mut Vec<Job>, metrics: &PostingMetrics) -> bool {
        let bound = self.bound(job.queued);
        if job.queued.elapsed() > bound {
            metrics.expired.inc();
            let _ = job.done.send(Err(AppError::Busy));
            false
        } else {
            job.start_by = job.queued + bound;
            batch.push(job);
            true
        }
    }
}

impl Batches {
    /// Runs one batch and answers each post, but for the posts held out of
    /// it by a lock (returned, for [`Self::post_held`] once the slot is free).
    async fn run(&self, batch: Vec<Job>) -> Vec<Job> {
        self.metrics.batch_rows.observe(batch.len() as f64);
        let _running = Running::start(&self.running);
        self.answer(batch).await
    }

    /// Posts each held post alone, waiting for its lock (up to the role's
    /// `lock_timeout`), at most `lock_waiters` at once: the others are
    /// answered 503 `row_locked` at once.
    async fn post_held(&self, held: Vec<Job>) {
        if held.is_empty() {
            return;
        }
        self.metrics.held.inc_by(held.len() as u64);
        let alone = held.into_iter().map(|job| async move {
            let outcome = match self.waiters.clone().try_acquire_owned() {
                Ok(waiter) => {
                    let outcome = self.alone(&job.post).await;
                    drop(waiter);
                    outcome
                }
                Err(_) => {
                    self.metrics.held_refused.inc();
                    Err(AppError::RowLocked)
                }
            };
            let _ = job.done.send(outcome);
        });
        futures_util::future::join_all(alone).await;
    }

    /// One post in a statement of its own, on its own pooled connection,
    /// waiting for its locks like any statement (not a batch).
    async fn alone(&self, post: &Post) -> Result<ReplyOutcome, AppError> {
        let conn = self.db.get().await?;
        only_outcome(conn.reply_create(&replies([post], self.per_minute, false)).await)
    }

    /// A pooled connection for `batch`. The queue and the checkout share one
    /// bound, counted from each post's arrival: under overload a post
    /// admitted to a batch starts within its bound or is answered 503, never
    /// both waits. Each post is held to its own bound: one that passes while
    /// the batch waits for a connection is answered then (503, as a request
    /// that waited too long for one) and the younger ones wait on, so an old
    /// post no longer takes a whole batch down with it. None when no post is
    /// left to send.
    async fn connection(&self, batch: &mut Vec<Job>) -> Option<Conn> {
        loop {
            let first = batch.iter().map(|job| job.start_by).min()?;
            match self.db.get_within(first.saturating_duration_since(Instant::now())).await {
                Ok(conn) => return Some(conn),
                Err(error @ PoolError::Timeout(TimeoutType::Wait)) => {
                    let now = Instant::now();
                    let (late, live) = std::mem::take(batch).into_iter().partition(|job| job.start_by <= now);
                    *batch = live;
                    answer_all(late, AppError::from(error));
                }
                Err(error) => {
                    answer_all(std::mem::take(batch), AppError::from(error));
                    return None;
                }
            }
        }
    }

    async fn answer(&self, mut batch: Vec<Job>) -> Vec<Job> {
        let (per_minute, metrics) = (self.per_minute, &self.metrics);
        let Some(conn) = self.connection(&mut batch).await else {
            return Vec::new();
        };
        let mut held = Vec::new();
        match conn.reply_create(&replies(batch.iter().map(|job| &job.post), per_minute, true)).await {
            Ok(outcomes) if outcomes.len() == batch.len() => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    if outcome.held {
                        held.push(job);
                    } else {
                        let _ = job.done.send(Ok(outcome));
                    }
                }
            }
            Ok(outcomes) => {
                answer_all(batch, AppError::Internal(anyhow::anyhow!("reply_create answered {} rows", outcomes.len())))
            }
            // Stopped at the batch's own lock timeout by a row its probe
            // cannot see (a stats row, a table lock): each post alone.
            Err(error) if lock_not_available(&error) => {
                tracing::debug!(%error, rows = batch.len(), "a batch of replies waited for a lock; posting one at a time");
                held = batch;
            }
            // Refused as a whole by one of its rows: find which, one at a time.
            Err(error) if batch.len() > 1 && refused_by_a_row(&error) => {
                metrics.fallbacks.inc();
                tracing::debug!(%error, rows = batch.len(), "a batch of replies was refused; posting one at a time");
                for job in batch {
                    match only_outcome(conn.reply_create(&replies([&job.post], per_minute, true)).await) {
                        Ok(outcome) if outcome.held => held.push(job),
                        outcome => {
                            let _ = job.done.send(outcome);
                        }
                    }
                }
            }
            Err(error) => answer_all(batch, refused(error, "parent_id")),
        }
        held
    }
}

/// One statement in flight, counted until dropped (also when a lone post's
/// handler is dropped mid-statement because its client went away).
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An error one row's data can cause (a data exception, an integrity
/// violation, a sanitizer limit), as opposed to the statement's or the
/// connection's fate (a timeout, a lost connection), which trying the rows
/// one by one would only repeat.
fn refused_by_a_row(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| matches!(db.code().code().get(..2), Some("22" | "23" | "54")))
}

/// The same error for every post of a batch; the first carries (and logs) the cause.
fn answer_all(batch: Vec<Job>, error: AppError) {
    let mut jobs = batch.into_iter();
    let first = jobs.next();
    for job in jobs {
        let _ = job.done.send(Err(error.for_another_waiter()));
    }
    if let Some(job) = first {
        let _ = job.done.send(Err(error));
    }
}

/// The one reply's outcome of a statement posting one reply.
fn only_outcome(written: Result<Vec<ReplyOutcome>, tokio_postgres::Error>) -> Result<ReplyOutcome, AppError> {
    match written {
        Ok(outcomes) => outcomes
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("reply_create answered no row"))),
        Err(error) => Err(refused(error, "parent_id")),
    }
}

fn replies<'a>(posts: impl IntoIterator<Item = &'a Post>, per_minute: i32, batch: bool) -> NewReplies<'a> {
    let posts: Vec<&Post> = posts.into_iter().collect();
    NewReplies {
        topics: posts.iter().map(|p| p.topic.0).collect(),
        parents: posts.iter().map(|p| p.parent.map(|r| r.0)).collect(),
        authors: posts.iter().map(|p| p.author.0).collect(),
        bodies: posts.iter().map(|p| p.body.as_str()).collect(),
        keys: posts.iter().map(|p| p.key.as_str()).collect(),
        per_minute,
        batch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_standing_for_max_wait_shortens_the_bound_of_later_posts() {
        let max_wait = Duration::from_millis(200);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut queue = Standing { max_wait, drained_at: start, gathered_at: start, since: None, refusing: false };
        queue.observe(false, at(40));
        queue.observe(false, at(90));
        queue.observe(false, at(150));
        assert_eq!(queue.bound(at(140)), max_wait, "not empty for less than max_wait: a burst");
        queue.observe(false, at(180));
        queue.observe(false, at(210));
        assert_eq!(queue.since, Some(at(210)));
        assert_eq!(queue.bound(at(220)), max_wait / 4, "arrived while the queue stood");
        assert_eq!(queue.bound(at(100)), max_wait, "arrived before: keeps its bound");
        assert_eq!(queue.rows(64, 16), 16, "standing: shorter batches");
        queue.observe(false, at(400));
        assert_eq!(queue.since, Some(at(210)), "it stands since it first stood");
        queue.observe(true, at(410));
        assert_eq!(queue.bound(at(420)), max_wait, "emptied: bursts again");
        assert_eq!(queue.rows(64, 16), 64);
    }
    #[test]
    fn a_queue_built_while_no_statement_finished_is_a_stall_not_overload() {
        let max_wait = Duration::from_millis(200);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut queue = Standing { max_wait, drained_at: start, gathered_at: start, since: None, refusing: false };
        // No slot freed for 250 ms (a commit stall), then the backlog
        // drains in batches every 20 ms: 310 ms without emptying, 160 of
        // them counted.
        queue.observe(false, at(250));
        queue.observe(false, at(270));
        queue.observe(false, at(290));
        queue.observe(false, at(310));
        assert_eq!(queue.since, None, "a stall's queue is not a standing one");
        assert_eq!(queue.bound(at(300)), max_wait, "posts after a stall keep their full wait");
        // Overload after it: statements keep finishing and the queue never
        // empties, so it stands once it has for max_wait of that time.
        queue.observe(false, at(330));
        assert_eq!(queue.since, None, "180 ms counted");
        queue.observe(false, at(350));
        assert_eq!(queue.since, Some(at(350)));
        queue.observe(true, at(360));
        assert_eq!(queue.since, None);
    }
}
