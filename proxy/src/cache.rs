//! A byte-bounded cache of hot read responses (topic list pages, the
//! category list, wiki pages), so that a burst of readers costs PostgreSQL one query per
//! page per TTL instead of one per request. Concurrent misses of one key wait
//! for a single load (moka's `try_get_with`). Entries live `ttl` (1 s unless
//! configured; 0 turns the cache off), so a response trails a write by at
//! most that; the realtime event stream invalidates them sooner, on every
//! proxy (`realtime::Invalidation`): lists on any topic or reply event, a
//! wiki page on its own events. A load that was already running when its
//! entry was invalidated can still store what it read: that is bounded by
//! the TTL too.
//!
//! Keys are built only from validated parameters, and the cache is bounded by
//! the bytes of keys and values together, so adversarial query strings can
//! churn it but not grow it.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;
use prometheus::IntCounter;

use crate::AppError;

/// What one cache entry costs beyond its key and value bytes: moka's entry,
/// its queue nodes and hash slot, the allocations' rounding. Measured with
/// `bench/cache.sh` (~540 bytes per small entry); the weighers count it, so
/// the configured byte bound is a bound on memory, not only on payload.
pub const ENTRY_OVERHEAD_BYTES: usize = 640;

pub struct ResponseCache {
    cache: Option<Cache<String, Bytes>>,
    counters: CacheCounters,
}

impl ResponseCache {
    pub fn new(max_bytes: u64, ttl: Duration, counters: CacheCounters) -> Self {
        let evictions = counters.evictions.clone();
        let cache = (!ttl.is_zero() && max_bytes > 0).then(|| {
            Cache::builder()
                .weigher(|key: &String, value: &Bytes| {
                    u32::try_from(key.len() + value.len() + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
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
        Self { cache, counters }
    }

    /// The cached body for `key`, or `load`'s (cached when it succeeds).
    pub async fn get_or_load<F>(&self, key: String, load: F) -> Result<Bytes, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let Some(cache) = &self.cache else {
            return load.await.map(Bytes::from);
        };
        if let Some(hit) = cache.get(&key).await {
            self.counters.hits.inc();
            return Ok(hit);
        }
        self.counters.misses.inc();
        cache.try_get_with(key, async { load.await.map(Bytes::from) }).await.map_err(|shared: Arc<AppError>| {
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
    pub evictions: IntCounter,
}
