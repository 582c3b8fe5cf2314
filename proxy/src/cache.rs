//! A byte-bounded cache of hot read responses (topic list pages, the
//! category list, the first page of each topic's reply tree, wiki pages), so that a burst of readers costs PostgreSQL one query per
//! page per TTL instead of one per request. Concurrent misses of one key wait
//! for a single load (moka's `try_get_with`). Entries live `ttl` (1 s unless
//! configured; 0 turns the cache off), so a response trails a write by at
//! most that; the realtime event stream invalidates them sooner, on every
//! proxy (`realtime::Invalidation`): lists and trees on topic or reply
//! events, a wiki page on its own events. A load that was already running when its
//! entry was invalidated can still store what it read: that is bounded by
//! the TTL too.
//!
//! Lists and trees are not dropped on every event: under a stream of
//! replies that would send nearly every read to PostgreSQL. The first change after a
//! quiet spell drops them at once; changes within `refresh` of that are
//! folded into one more drop at the next tick, so lists trail a write by at
//! most `refresh` (250 ms by default) plus the event's way to this proxy, and
//! are reloaded at most every `refresh`, by one query per key (concurrent
//! misses share one load). A writer does not wait for that: for `refresh`
//! after a write, that session's reads of the lists its write shows in (its
//! topic's category and all categories) and of its topic's tree take the
//! cached response only if it was loaded after the write, and otherwise load
//! it afresh and store it for everyone, so an author's next read shows their
//! post.
//!
//! Keys are built only from validated parameters, and the cache is bounded by
//! the bytes of keys and values together, so adversarial query strings can
//! churn it but not grow it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use std::time::Duration;

use crate::http::compress::Prepared;

use moka::future::Cache;
use moka::notification::RemovalCause;
use prometheus::IntCounter;

use crate::AppError;

/// A writer: the hash of its session token (`sessions::TokenHash`, spelled
/// out so the cache does not depend on the sessions that depend on it).
pub type WriterKey = [u8; 32];

/// Sessions that wrote in the last `refresh`, at most this many (a bound;
/// past it moka evicts the least used, whose next read may then be cached).
const WRITERS_TRACKED: u64 = 100_000;

/// What one cache entry costs beyond its key and value bytes: moka's entry,
/// its queue nodes and hash slot, the allocations' rounding. Measured with
/// `bench/cache.sh` (~540 bytes per small entry); the weighers count it, so
/// the configured byte bound is a bound on memory, not only on payload.
pub const ENTRY_OVERHEAD_BYTES: usize = 640;

/// A cached response (each encoding made once, when first asked for) and when its load
/// started (what it can have seen).
#[derive(Clone)]
struct Filled {
    at: Instant,
    body: Prepared,
}

pub struct ResponseCache {
    cache: Option<Cache<String, Filled>>,
    counters: CacheCounters,
    /// Lists are dropped at most this often (zero: on every change).
    refresh: Duration,
    /// When lists were last dropped, and whether a change waits for the next tick.
    dropped_at: std::sync::Mutex<Option<Instant>>,
    pending: AtomicBool,
    /// Sessions that wrote within `refresh`: when, and where.
    writers: moka::sync::Cache<WriterKey, (Instant, Wrote)>,
}

/// Where a write shows: its topic's category lists, and its topic's tree
/// (`None`: not known to the handler, so every one).
#[derive(Debug, Clone, Copy)]
pub struct Wrote {
    pub category: Option<i64>,
    pub topic: Option<i64>,
}

/// What a cached read shows, for a writer's next read of it.
#[derive(Debug, Clone, Copy)]
pub enum Shows {
    /// A list page of one category, or of all (`None`).
    List(Option<i64>),
    /// The first page of a topic's reply tree.
    Tree(i64),
}

impl Shows {
    fn shows(self, wrote: Wrote) -> bool {
        match self {
            Self::List(category) => category.zip(wrote.category).is_none_or(|(c, w)| c == w),
            Self::Tree(topic) => wrote.topic.is_none_or(|w| w == topic),
        }
    }
}

impl ResponseCache {
    pub fn new(max_bytes: u64, ttl: Duration, refresh: Duration, counters: CacheCounters) -> Self {
        let evictions = counters.evictions.clone();
        let cache = (!ttl.is_zero() && max_bytes > 0).then(|| {
            Cache::builder()
                .weigher(|key: &String, value: &Filled| {
                    // Every encoding of the body counts.
                    u32::try_from(key.len() + value.body.len() + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
                })
                .max_capacity(max_bytes)
                .time_to_live(ttl)
                .eviction_listener(move |_, _, cause| {
                    if cause == RemovalCause::Size {
                        evictions.inc();
                    }
                })
                .build()
        });
        let writers = moka::sync::Cache::builder()
            .max_capacity(WRITERS_TRACKED)
            .time_to_live(refresh.max(Duration::from_millis(1)))
            .build();
        Self {
            cache,
            counters,
            refresh,
            dropped_at: std::sync::Mutex::new(None),
            pending: AtomicBool::new(false),
            writers,
        }
    }

    /// [`ResponseCache::get_or_load`] for a response that `shows` a list page
    /// or a topic's tree, read by `reader`: if the reader wrote there within
    /// `refresh`, a response loaded before that write is loaded afresh, and
    /// what it read replaces the cached one for everyone. Writers waiting on
    /// one key share one load, as other misses do: every writer whose write
    /// came before a load started is answered by it (under the seed's mix,
    /// where every user posts, one load per writer cost PostgreSQL 0.4 of a
    /// core).
    pub async fn get_or_load_for<F>(
        &self,
        reader: Option<&WriterKey>,
        shows: Shows,
        key: String,
        load: F,
    ) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let wrote_at = reader
            .and_then(|reader| self.writers.get(reader))
            .filter(|(_, wrote)| shows.shows(*wrote))
            .map(|(at, _)| at);
        let (Some(cache), Some(wrote_at)) = (&self.cache, wrote_at) else {
            return self.get_or_load(key, load).await;
        };
        match cache.get(&key).await {
            Some(hit) if hit.at > wrote_at => {
                self.counters.hits.inc();
                return Ok(hit.body);
            }
            // Loaded before the write: not for this reader, nor for anyone
            // after it.
            Some(_) => cache.invalidate(&key).await,
            None => {}
        }
        self.counters.misses.inc();
        // A load already in flight may have started before the write; the
        // next one starts after that one ends, so after the write: at most
        // two rounds. `load` runs in the round whose load is this reader's.
        let mut load = Some(load);
        for _ in 0..2 {
            let round = self
                .fill(cache, key.clone(), async {
                    match load.take() {
                        Some(load) => load.await,
                        None => Err(AppError::Internal(anyhow::anyhow!("a cache load ran twice"))),
                    }
                })
                .await?;
            if round.at > wrote_at {
                return Ok(round.body);
            }
            cache.invalidate(&key).await;
        }
        // Not reached (the second round's load started after the first
        // ended, so after the write; and a round that ran this reader's own
        // load returned): a load of its own keeps the promise regardless.
        let load = load.ok_or_else(|| AppError::Internal(anyhow::anyhow!("a cache load ran and was stale")))?;
        self.counters.loads.inc();
        Ok(Prepared::new(load.await?))
    }

    /// `writer` just wrote (committed): its reads within `refresh` of the
    /// lists of that category, and of that topic's tree, show the write.
    pub fn wrote(&self, writer: &WriterKey, wrote: Wrote) {
        if self.cache.is_some() {
            self.writers.insert(*writer, (Instant::now(), wrote));
        }
    }

    /// A change that list pages show: they are dropped now if they were not
    /// dropped within `refresh`, else at the next tick of [`ResponseCache::refresh_lists`].
    pub fn lists_changed(&self) {
        let now = Instant::now();
        let due = {
            let mut dropped_at = self.dropped_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = dropped_at.is_none_or(|at| now.duration_since(at) >= self.refresh);
            if due {
                *dropped_at = Some(now);
            }
            due
        };
        if due {
            self.invalidate_all();
        } else {
            self.pending.store(true, Ordering::Release);
        }
    }

    /// Drops the lists every `refresh` while changes wait, until `cancel`.
    pub async fn refresh_lists(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        if self.refresh.is_zero() || self.cache.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(self.refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.pending.swap(false, Ordering::AcqRel) {
                *self.dropped_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                self.invalidate_all();
            }
        }
    }

    /// The cached body for `key`, or `load`'s (cached when it succeeds).
    pub async fn get_or_load<F>(&self, key: String, load: F) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let Some(cache) = &self.cache else {
            // Not kept: compressed per request (if asked) like any other response.
            self.counters.loads.inc();
            return load.await.map(Prepared::plain);
        };
        if let Some(hit) = cache.get(&key).await {
            self.counters.hits.inc();
            return Ok(hit.body);
        }
        self.counters.misses.inc();
        self.fill(cache, key, load).await.map(|filled| filled.body)
    }

    /// `key`'s entry, filled by `load` unless a fill of it is in flight, in
    /// which case this waits for that one (concurrent misses share a load).
    async fn fill<F>(&self, cache: &Cache<String, Filled>, key: String, load: F) -> Result<Filled, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let load = async {
            self.counters.loads.inc();
            let at = Instant::now();
            load.await.map(|body| Filled { at, body: Prepared::new(body) })
        };
        cache.try_get_with(key, load).await.map_err(|shared: Arc<AppError>| {
            Arc::try_unwrap(shared).unwrap_or_else(|shared| shared.for_another_waiter())
        })
    }

    /// Drops one cached response.
    pub async fn invalidate(&self, key: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(key).await;
        }
    }

    /// Drops every cached response (a write changed what lists show).
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Bytes held (by the weigher's count) and entries, for `/metrics`.
    pub async fn usage(&self) -> (u64, u64) {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks().await;
                (cache.weighted_size(), cache.entry_count())
            }
            None => (0, 0),
        }
    }
}

/// A cache's counters (the session and the response caches), registered by [`crate::metrics::Metrics`].
#[derive(Clone)]
pub struct CacheCounters {
    pub hits: IntCounter,
    pub misses: IntCounter,
    pub loads: IntCounter,
    pub evictions: IntCounter,
}
