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
//! a post that waited longer than `max_wait` before its batch left is
//! answered 503 + Retry-After without being written, like a request that
//! waited too long for a pooled connection, and the batch's own wait for a
//! connection gets only what is left of its oldest post's `max_wait`, so
//! an admitted post starts within `max_wait` of its arrival. Each post gets
//! its own outcome:
//! a rate-limited author, a locked topic or a foreign parent never fails a
//! neighbour. A batch that PostgreSQL refuses as a whole (a body the
//! sanitizer refuses, a parent deleted meanwhile) is tried again one post at
//! a time, so only the guilty post gets the error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppError;
use crate::http::error::refused;
use crate::store::Db;
use crate::store::forums::{NewReplies, ReplyOutcome};
use crate::store::ids::{ReplyId, TopicId, UserId};

/// How batches are formed; from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Statements in flight at once (each holds one pooled connection).
    pub batches: usize,
    /// Replies in one statement at most.
    pub max_rows: usize,
    /// Posts waiting at most; more are answered 503 at once.
    pub queue: usize,
    /// Longest wait in the queue before a post is answered 503 unwritten.
    pub max_wait: Duration,
    pub per_minute: i32,
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
    done: oneshot::Sender<Result<ReplyOutcome, AppError>>,
}

/// Batch sizes and fallbacks, registered by [`crate::metrics::Metrics`].
#[derive(Clone)]
pub struct PostingMetrics {
    pub batch_rows: Histogram,
    pub fallbacks: IntCounter,
    pub expired: IntCounter,
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
        let (done, outcome) = oneshot::channel();
        let job = Job { post, queued: Instant::now(), done };
        // Nothing in flight, nobody waiting: a batch of one, from this task.
        let idle = self.queued() == 0 && self.batches.running.load(Ordering::Acquire) == 0;
        let alone = if idle { self.slots.clone().try_acquire_owned().ok() } else { None };
        if let Some(slot) = alone {
            self.batches.run(vec![job]).await;
            drop(slot);
        } else {
            self.queue.try_send(job).map_err(|_| AppError::Busy)?;
        }
        // Dropped unanswered only when the server is shutting down.
        outcome.await.unwrap_or(Err(AppError::Busy))
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
    loop {
        let slot = tokio::select! {
            () = cancel.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let first = tokio::select! {
            () = cancel.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = Vec::with_capacity(max_rows.min(64));
        admit(first, &mut batch, settings.max_wait, &batches.metrics);
        while batch.len() < max_rows {
            match jobs.try_recv() {
                Ok(job) => admit(job, &mut batch, settings.max_wait, &batches.metrics),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let batches = batches.clone();
        tasks.spawn(async move {
            batches.run(batch).await;
            drop(slot);
        });
    }
}

/// Adds `job` to `batch`, unless it waited past `max_wait`: then it is
/// answered 503 unwritten.
fn admit(job: Job, batch: &mut Vec<Job>, max_wait: Duration, metrics: &PostingMetrics) {
    if job.queued.elapsed() > max_wait {
        metrics.expired.inc();
        let _ = job.done.send(Err(AppError::Busy));
    } else {
        batch.push(job);
    }
}

impl Batches {
    /// Runs one batch and answers each post.
    async fn run(&self, batch: Vec<Job>) {
        self.metrics.batch_rows.observe(batch.len() as f64);
        let _running = Running::start(&self.running);
        self.answer(batch).await;
    }

    async fn answer(&self, batch: Vec<Job>) {
        let (db, per_minute, metrics) = (&self.db, self.per_minute, &self.metrics);
        // The queue and the checkout share one bound, counted from the
        // oldest post's arrival: under overload a post admitted to a batch
        // starts within `max_wait` or is answered 503, never both waits.
        let waited = batch.iter().map(|job| job.queued.elapsed()).max().unwrap_or_default();
        let conn = match db.get_within(self.max_wait.saturating_sub(waited)).await {
            Ok(conn) => conn,
            Err(error) => return answer_all(batch, AppError::from(error)),
        };
        match conn.reply_create(&replies(&batch, per_minute)).await {
            Ok(outcomes) if outcomes.len() == batch.len() => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.done.send(Ok(outcome));
                }
            }
            Ok(outcomes) => {
                answer_all(batch, AppError::Internal(anyhow::anyhow!("reply_create answered {} rows", outcomes.len())))
            }
            // Refused as a whole by one of its rows: find which, one at a time.
            Err(error) if batch.len() > 1 && refused_by_a_row(&error) => {
                metrics.fallbacks.inc();
                tracing::debug!(%error, rows = batch.len(), "a batch of replies was refused; posting one at a time");
                for job in batch {
                    let alone = replies(std::slice::from_ref(&job), per_minute);
                    let outcome = match conn.reply_create(&alone).await {
                        Ok(outcomes) => outcomes
                            .into_iter()
                            .next()
                            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("reply_create answered no row"))),
                        Err(error) => Err(refused(error, "parent_id")),
                    };
                    let _ = job.done.send(outcome);
                }
            }
            Err(error) => answer_all(batch, refused(error, "parent_id")),
        }
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

fn replies(batch: &[Job], per_minute: i32) -> NewReplies<'_> {
    NewReplies {
        topics: batch.iter().map(|j| j.post.topic.0).collect(),
        parents: batch.iter().map(|j| j.post.parent.map(|p| p.0)).collect(),
        authors: batch.iter().map(|j| j.post.author.0).collect(),
        bodies: batch.iter().map(|j| j.post.body.as_str()).collect(),
        keys: batch.iter().map(|j| j.post.key.as_str()).collect(),
        per_minute,
    }
}
