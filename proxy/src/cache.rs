//! A byte-bounded cache of hot read responses (topic list pages, the
//! category list, the first page of each topic's reply tree, wiki pages), so
//! that a burst of readers costs PostgreSQL one query per page per lifetime
//! instead of one per request. Concurrent misses of one key wait for a
//! single load (moka's `try_get_with`). 0 ms turns the cache off.
//!
//! Two kinds of entry, each kept true by the realtime event stream on every
//! proxy (`realtime::Invalidation`):
//!
//! - **Lists** (list pages, categories, reply trees) live `ttl` (1 s) and are
//!   dropped together on topic and reply events. Not on every event: under a
//!   stream of replies that would send nearly every read to PostgreSQL. The
//!   first change after a quiet spell drops them at once; changes within
//!   `refresh` of that are folded into one more drop at the next tick, so
//!   lists trail a write by at most `refresh` (250 ms by default) plus the
//!   event's way to this proxy, and are reloaded at most every `refresh`, by
//!   one query per key (concurrent misses share one load). A drop is a new
//!   generation: an entry whose load started in an older one is not served,
//!   so a load that was running when its lists were dropped cannot outlive
//!   the drop. A writer does not wait for the refresh: for `refresh` plus
//!   [`EVENT_WAY`] after a write (the longest the lists can trail it while
//!   events flow), that session's reads of the lists its write shows in
//!   (its topic's category and all categories) and of its topic's tree take
//!   the cached response only if it was loaded after the write, and
//!   otherwise load it afresh and store it for everyone, so an author's next
//!   read shows their post.
//! - **Pages** (wiki pages) live `page_ttl` (30 s): topic and reply events
//!   leave them alone, and a page's own events drop it, and it alone. A load
//!   that started before its page was dropped is not served afterwards (the
//!   drop's time is kept for as long as such an entry could live), so a page
//!   trails its revision by the event's way here; `page_ttl` bounds only a
//!   change that made no event.
//!
//! Keys are built only from validated parameters, and the cache is bounded by
//! the bytes of keys and values together, so adversarial query strings can
//! churn it but not grow it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http::compress::Prepared;

use axum::http::HeaderMap;
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use prometheus::IntCounter;

use crate::AppError;

/// A writer: the hash of its session token (`sessions::TokenHash`, spelled
/// out so the cache does not depend on the sessions that depend on it).
pub type WriterKey = [u8; 32];

/// Sessions that wrote in their window (`refresh` plus [`EVENT_WAY`]), at
/// most this many (a bound; past it moka evicts the least used, whose next
/// read may then be cached). Each holds 768 bytes of [`Writes`], ~1.4 KB
/// with its key and moka's entry, so ~14 MB at the bound: room for 8,000
/// posts a second within the window (this machine commits ~5,000).
const WRITERS_TRACKED: u64 = 10_000;

/// How much longer than `refresh` a write is tracked for its writer: the
/// lists are dropped within `refresh` of its event's arrival here, and the
/// event comes after the commit (the sequencer's 10 ms tick, then the
/// listener's fetch; tens of milliseconds under the seed's mix). Tracking
/// only `refresh` left the writer a stale read when the event arrived after
/// the tick that followed the write; past this, if the event is later still
/// (the sequencer stalled), the writer's read trails like everyone's.
const EVENT_WAY: Duration = Duration::from_secs(1);

/// Pages dropped within a page's lifetime whose drop times are kept, at most
/// this many (moka evicts the least used past it). One per wiki revision
/// (edits are rate-limited per user): past it, a load that raced a revision
/// could be served until `page_ttl` (the bound without this record).
const PAGE_DROPS_TRACKED: u64 = 10_000;

/// How much longer than a page lives its drop time is kept: a load that
/// started before the drop may finish (and insert) up to the statement
/// timeout (10 s) after it, and its entry lives `page_ttl` from then.
const LOAD_BOUND: Duration = Duration::from_secs(60);

/// What one cache entry costs beyond its key and value bytes: moka's entry,
/// its queue nodes and hash slot, the allocations' rounding. Measured with
/// `bench/cache.sh` (~540 bytes per small entry); the weighers count it, so
/// the configured byte bound is a bound on memory, not only on payload.
pub const ENTRY_OVERHEAD_BYTES: usize = 640;

/// A cached response (each encoding made once, when first asked for), when
/// its load started (what it can have seen), and its kind.
#[derive(Clone)]
struct Filled {
    at: Instant,
    kind: Kind,
    body: Prepared,
}

/// What drops an entry, and how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Dropped with all lists; the lists' generation its load started in.
    List(u64),
    /// Dropped by its own key only.
    Page,
}

/// The kind of entry a load makes ([`Kind`] once its load starts).
#[derive(Debug, Clone, Copy)]
enum Class {
    List,
    Page,
}

/// Each entry's lifetime by its kind.
struct Lifetimes {
    list: Duration,
    page: Duration,
}

impl Expiry<String, Filled> for Lifetimes {
    fn expire_after_create(&self, _: &String, value: &Filled, _: Instant) -> Option<Duration> {
        Some(match value.kind {
            Kind::List(_) => self.list,
            Kind::Page => self.page,
        })
    }
}

pub struct ResponseCache {
    cache: Option<Cache<String, Filled>>,
    counters: CacheCounters,
    /// Lists are dropped at most this often (zero: on every change).
    refresh: Duration,
    /// When lists were last dropped, and whether a change waits for the next tick.
    dropped_at: std::sync::Mutex<Option<Instant>>,
    pending: AtomicBool,
    /// The lists' generation: one more at each drop.
    generation: AtomicU64,
    /// When each recently dropped page was dropped.
    page_drops: moka::sync::Cache<String, Instant>,
    /// How long a write is tracked for its writer: `refresh` plus [`EVENT_WAY`].
    writes_window: Duration,
    /// Sessions that wrote within `writes_window`: when, and where.
    writers: moka::sync::Cache<WriterKey, Writes>,
}

/// Categories whose lists a session wrote to within its window, kept
/// exactly, at most this many (the seed's data has 12); past it the two
/// written longest ago are folded into "every category".
const CATEGORIES_KEPT: usize = 16;

/// Topics whose trees a session wrote to within its window, kept exactly,
/// at most this many; past it the same folding.
const TOPICS_KEPT: usize = 8;

/// A session's writes within its window: when it last wrote to each category
/// (for the lists) and to each topic (for the trees).
#[derive(Debug, Clone, Copy, Default)]
struct Writes {
    categories: Recent<CATEGORIES_KEPT>,
    topics: Recent<TOPICS_KEPT>,
}

impl Writes {
    /// These writes and `wrote` at `at`, forgetting those older than `window`.
    fn and(mut self, at: Instant, wrote: Wrote, window: Duration) -> Self {
        self.categories = self.categories.and(wrote.category, at, window);
        self.topics = self.topics.and(wrote.topic, at, window);
        self
    }

    /// When the newest of these writes within `window` that `shows` shows was made.
    fn newest(&self, shows: Shows, window: Duration) -> Option<Instant> {
        match shows {
            // Every write shows in the list of all categories.
            Shows::List(None) => self.categories.newest(|_| true, window),
            Shows::List(Some(category)) => self.categories.newest(|key| key.is_none_or(|k| k == category), window),
            Shows::Tree(topic) => self.topics.newest(|key| key.is_none_or(|k| k == topic), window),
        }
    }
}

/// The newest write time for each of at most `N` keys (`None`: every key).
/// Past `N` the two keys written longest ago are folded into `None` at the
/// newer one's time: a read then waits for a load after that, so the bound
/// costs loads, never a stale read.
#[derive(Debug, Clone, Copy)]
struct Recent<const N: usize>([Option<(Option<i64>, Instant)>; N]);

impl<const N: usize> Default for Recent<N> {
    fn default() -> Self {
        Self([None; N])
    }
}

impl<const N: usize> Recent<N> {
    fn and(self, key: Option<i64>, at: Instant, window: Duration) -> Self {
        let mut kept: Vec<(Option<i64>, Instant)> =
            self.0.into_iter().flatten().filter(|(_, then)| at.duration_since(*then) < window).collect();
        put(&mut kept, key, at);
        while kept.len() > N {
            kept.sort_by_key(|(_, at)| *at);
            let (_, newer) = kept[1];
            kept.drain(0..2);
            put(&mut kept, None, newer);
        }
        // Oldest first.
        kept.sort_by_key(|(_, at)| *at);
        let mut recent = Self::default();
        for (slot, entry) in recent.0.iter_mut().zip(kept) {
            *slot = Some(entry);
        }
        recent
    }

    fn newest(&self, shows: impl Fn(Option<i64>) -> bool, window: Duration) -> Option<Instant> {
        let now = Instant::now();
        self.0
            .iter()
            .flatten()
            .filter(|(key, at)| now.duration_since(*at) < window && shows(*key))
            .map(|(_, at)| *at)
            .max()
    }
}

/// `key` written at `at`: one entry per key, at its newest time.
fn put(kept: &mut Vec<(Option<i64>, Instant)>, key: Option<i64>, at: Instant) {
    match kept.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = entry.1.max(at),
        None => kept.push((key, at)),
    }
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

impl ResponseCache {
    pub fn new(max_bytes: u64, ttl: Duration, page_ttl: Duration, refresh: Duration, counters: CacheCounters) -> Self {
        let evictions = counters.evictions.clone();
        let cache = (!ttl.is_zero() && max_bytes > 0).then(|| {
            Cache::builder()
                .weigher(|key: &String, value: &Filled| {
                    // The JSON and each encoding made (weighed again when one is made).
                    u32::try_from(key.len() + value.body.len() + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
                })
                .max_capacity(max_bytes)
                .expire_after(Lifetimes { list: ttl, page: page_ttl })
                .eviction_listener(move |_, _, cause| {
                    if cause == RemovalCause::Size {
                        evictions.inc();
                    }
                })
                .build()
        });
        let writes_window = refresh + EVENT_WAY;
        let writers = moka::sync::Cache::builder().max_capacity(WRITERS_TRACKED).time_to_live(writes_window).build();
        Self {
            cache,
            counters,
            refresh,
            writes_window,
            dropped_at: std::sync::Mutex::new(None),
            pending: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            page_drops: moka::sync::Cache::builder()
                .max_capacity(PAGE_DROPS_TRACKED)
                .time_to_live(page_ttl.saturating_add(LOAD_BOUND))
                .build(),
            writers,
        }
    }

    /// [`ResponseCache::get_or_load`] for a response that `shows` a list page
    /// or a topic's tree, read by `reader`: if the reader wrote there within
    /// its window, a response loaded before that write is loaded afresh, and
    /// what it read replaces the cached one for everyone. Writers waiting on
    /// one key share one load, as other misses do: every writer whose write
    /// came before a load started is answered by it (under the seed's mix,
    /// where every user posts, one load per writer cost PostgreSQL 0.4 of a
    /// core).
    pub async fn get_or_load_for<F>(
        &self,
        reader: Option<&WriterKey>,
        shows: Shows,
        request: &HeaderMap,
        key: String,
        load: F,
    ) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let wrote_at = reader
            .and_then(|reader| self.writers.get(reader))
            .and_then(|writes| writes.newest(shows, self.writes_window));
        let (Some(cache), Some(wrote_at)) = (&self.cache, wrote_at) else {
            return self.get_or_load(request, key, load).await;
        };
        match cache.get(&key).await {
            Some(hit) if hit.at > wrote_at && self.fresh(&key, &hit) => {
                self.counters.hits.inc();
                return Ok(self.encoded(cache, &key, hit, request).await);
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
                .fill(cache, key.clone(), Class::List, async {
                    match load.take() {
                        Some(load) => load.await,
                        None => Err(AppError::Internal(anyhow::anyhow!("a cache load ran twice"))),
                    }
                })
                .await?;
            if round.at > wrote_at {
                return Ok(self.encoded(cache, &key, round, request).await);
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

    /// `writer` just wrote (committed): its reads within `refresh` plus
    /// [`EVENT_WAY`] of the lists of that category, and of that topic's
    /// tree, show the write. Each of the session's writes of that window
    /// counts, not only its last: a post in one category and then one in
    /// another must both show.
    pub fn wrote(&self, writer: &WriterKey, wrote: Wrote) {
        if self.cache.is_some() {
            let (now, window) = (Instant::now(), self.writes_window);
            self.writers.entry(*writer).and_upsert_with(|writes| {
                writes.map(|entry| *entry.value()).unwrap_or_default().and(now, wrote, window)
            });
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
            self.drop_lists();
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
                self.drop_lists();
            }
        }
    }

    /// The cached body for `key`, a list (dropped with the lists), or
    /// `load`'s (cached when it succeeds).
    pub async fn get_or_load<F>(&self, request: &HeaderMap, key: String, load: F) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        self.get_or_fill(request, key, Class::List, load).await
    }

    /// [`ResponseCache::get_or_load`] for a page: dropped only by
    /// [`ResponseCache::page_changed`] of its key, and kept `page_ttl`.
    pub async fn get_or_load_page<F>(&self, request: &HeaderMap, key: String, load: F) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        self.get_or_fill(request, key, Class::Page, load).await
    }

    async fn get_or_fill<F>(
        &self,
        request: &HeaderMap,
        key: String,
        class: Class,
        load: F,
    ) -> Result<Prepared, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let Some(cache) = &self.cache else {
            // Not kept: compressed per request (if asked) like any other response.
            self.counters.loads.inc();
            return load.await.map(Prepared::plain);
        };
        if let Some(hit) = cache.get(&key).await {
            if self.fresh(&key, &hit) {
                self.counters.hits.inc();
                return Ok(self.encoded(cache, &key, hit, request).await);
            }
            // Loaded before a drop that it may not show.
            cache.invalidate(&key).await;
        }
        self.counters.misses.inc();
        let filled = self.fill(cache, key.clone(), class, load).await?;
        Ok(self.encoded(cache, &key, filled, request).await)
    }

    /// `filled`'s body with the encoding `request` is answered with made.
    /// moka weighs an entry when it is stored, so an entry that just came to
    /// hold a new encoding is stored again (if it is still `key`'s entry) and
    /// the byte bound counts what each entry holds, not a worst case.
    async fn encoded(&self, cache: &Cache<String, Filled>, key: &str, filled: Filled, request: &HeaderMap) -> Prepared {
        if filled.body.prepare(request) {
            let body = filled.body.clone();
            let _ = cache
                .entry_by_ref(key)
                .and_compute_with(|entry| async move {
                    match entry {
                        Some(entry) if entry.value().body.same(&body) => Op::Put(entry.into_value()),
                        _ => Op::Nop,
                    }
                })
                .await;
        }
        filled.body
    }

    /// Whether `hit` was loaded after the last drop of its kind: for a
    /// list, in the present generation; for a page, after its key's drop.
    fn fresh(&self, key: &str, hit: &Filled) -> bool {
        match hit.kind {
            Kind::List(generation) => generation == self.generation.load(Ordering::Acquire),
            Kind::Page => self.page_drops.get(key).is_none_or(|dropped| hit.at > dropped),
        }
    }

    /// `key`'s entry, filled by `load` unless a fill of it is in flight, in
    /// which case this waits for that one (concurrent misses share a load).
    async fn fill<F>(
        &self,
        cache: &Cache<String, Filled>,
        key: String,
        class: Class,
        load: F,
    ) -> Result<Filled, AppError>
    where
        F: Future<Output = Result<String, AppError>>,
    {
        let load = async {
            self.counters.loads.inc();
            // Read before the load starts: a drop from now on is newer than what it reads.
            let kind = match class {
                Class::List => Kind::List(self.generation.load(Ordering::Acquire)),
                Class::Page => Kind::Page,
            };
            let at = Instant::now();
            load.await.map(|body| Filled { at, kind, body: Prepared::new(body) })
        };
        cache.try_get_with(key, load).await.map_err(|shared: Arc<AppError>| {
            Arc::try_unwrap(shared).unwrap_or_else(|shared| shared.for_another_waiter())
        })
    }

    /// A page changed: its entry is dropped, and a load of it that started
    /// before now is not served.
    pub async fn page_changed(&self, key: &str) {
        if let Some(cache) = &self.cache {
            self.page_drops.insert(key.to_owned(), Instant::now());
            cache.invalidate(key).await;
        }
    }

    /// Drops every list (a write changed what they show): a new generation.
    fn drop_lists(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(refresh: Duration) -> ResponseCache {
        let counter = |name: &str| IntCounter::new(name, "test").expect("a valid counter");
        let counters = CacheCounters {
            hits: counter("hits"),
            misses: counter("misses"),
            loads: counter("loads"),
            evictions: counter("evictions"),
        };
        ResponseCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(60), refresh, counters)
    }

    fn body(prepared: &Prepared) -> String {
        String::from_utf8_lossy(prepared.json()).into_owned()
    }

    async fn page(cache: &ResponseCache, key: &str, body: &str) -> String {
        let loaded = cache.get_or_load_page(&HeaderMap::new(), key.to_owned(), async { Ok(body.to_owned()) }).await;
        self::body(&loaded.expect("a load that cannot fail"))
    }

    async fn list(cache: &ResponseCache, key: &str, body: &str) -> String {
        let loaded = cache.get_or_load(&HeaderMap::new(), key.to_owned(), async { Ok(body.to_owned()) }).await;
        self::body(&loaded.expect("a load that cannot fail"))
    }

    #[tokio::test]
    async fn a_page_outlives_list_drops_and_goes_with_its_own_change() {
        let cache = cache(Duration::ZERO);
        assert_eq!(page(&cache, "wiki:a", "\"a1\"").await, "\"a1\"");
        assert_eq!(page(&cache, "wiki:b", "\"b1\"").await, "\"b1\"");
        assert_eq!(list(&cache, "topics", "[1]").await, "[1]");

        cache.lists_changed();
        assert_eq!(list(&cache, "topics", "[2]").await, "[2]", "the list is reloaded");
        assert_eq!(page(&cache, "wiki:a", "\"a2\"").await, "\"a1\"", "the page is not");

        cache.page_changed("wiki:a").await;
        assert_eq!(page(&cache, "wiki:a", "\"a3\"").await, "\"a3\"", "its own change drops it");
        assert_eq!(page(&cache, "wiki:b", "\"b2\"").await, "\"b1\"", "and no other page");
        assert_eq!(list(&cache, "topics", "[3]").await, "[2]", "nor the lists");
    }

    /// An entry weighs what it holds: the JSON until a client asks for an
    /// encoding, then the JSON and that encoding, so the byte bound is spent
    /// on entries rather than on room for encodings nobody asked for.
    #[tokio::test]
    async fn an_entry_is_weighed_again_when_it_comes_to_hold_an_encoding() {
        let cache = cache(Duration::ZERO);
        let json = format!("[{}]", vec!["{\"id\":1,\"title\":\"a topic\"}"; 100].join(","));
        let overhead = "topics".len() + ENTRY_OVERHEAD_BYTES;
        let load = |request| cache.get_or_load(request, "topics".to_owned(), async { Ok(json.clone()) });
        let identity = HeaderMap::new();
        load(&identity).await.expect("loaded");
        assert_eq!(cache.usage().await.0, (overhead + json.len()) as u64, "the JSON alone");

        let mut gzip = HeaderMap::new();
        gzip.insert(axum::http::header::ACCEPT_ENCODING, axum::http::HeaderValue::from_static("gzip"));
        let body = load(&gzip).await.expect("a hit");
        let grown = cache.usage().await.0;
        assert_eq!(grown, body.len() as u64 + overhead as u64, "weighed again with its gzip");
        assert!(body.len() > json.len() && grown < (overhead + 2 * json.len()) as u64, "{grown}");
        assert_eq!(cache.counters.loads.get(), 1, "still the one load");
    }

    /// What the cache keeps beside its entries is bounded too: the drop
    /// times of pages (one per revision) and the sessions that just wrote
    /// (one per post) stay at their caps however many arrive.
    #[tokio::test]
    async fn the_records_beside_the_entries_are_bounded() {
        let cache = cache(Duration::from_secs(60));
        let pages = PAGE_DROPS_TRACKED + 500;
        for n in 0..pages {
            cache.page_changed(&format!("wiki:{n}")).await;
        }
        let writers = WRITERS_TRACKED + 500;
        for n in 0..writers {
            let mut writer = [0u8; 32];
            writer[..8].copy_from_slice(&n.to_le_bytes());
            cache.wrote(&writer, Wrote { category: None, topic: None });
        }
        cache.page_drops.run_pending_tasks();
        cache.writers.run_pending_tasks();
        assert!(cache.page_drops.entry_count() <= PAGE_DROPS_TRACKED, "{} page drops", cache.page_drops.entry_count());
        assert!(cache.writers.entry_count() <= WRITERS_TRACKED, "{} writers", cache.writers.entry_count());
        assert!(cache.page_drops.entry_count() > 0 && cache.writers.entry_count() > 0, "and still kept");
        assert!(std::mem::size_of::<Writes>() <= 768, "the record WRITERS_TRACKED's memory figure counts");
    }

    /// A writer's read of a list for `writer` (loaded with `body` if it must be).
    async fn list_for(cache: &ResponseCache, writer: &WriterKey, category: i64, body: &str) -> String {
        let key = format!("topics:{category}");
        let (load, request) = (async { Ok(body.to_owned()) }, HeaderMap::new());
        let loaded = cache.get_or_load_for(Some(writer), Shows::List(Some(category)), &request, key, load).await;
        self::body(&loaded.expect("a load that cannot fail"))
    }

    /// A session that posts in one category and then in others within its
    /// window still reads the first category's list afresh: every write of
    /// the window counts, not only the last (which once made the first post's
    /// list come from the cache, loaded before it), and a category it did not
    /// write to is served from the cache.
    #[tokio::test]
    async fn each_write_of_the_window_shows_in_its_writer_s_next_read() {
        let cache = cache(Duration::from_secs(60));
        let writer = [7u8; 32];
        for category in 1..=8 {
            assert_eq!(list_for(&cache, &[0u8; 32], category, "\"before\"").await, "\"before\"");
        }
        for category in 1..=6 {
            cache.wrote(&writer, Wrote { category: Some(category), topic: Some(category * 10) });
        }
        for category in 1..=6 {
            assert_eq!(list_for(&cache, &writer, category, "\"after\"").await, "\"after\"", "category {category}");
        }
        assert_eq!(list_for(&cache, &writer, 7, "\"again\"").await, "\"before\"", "not written to: cached");
        assert!(cache.writers.get(&writer).expect("tracked").newest(Shows::List(Some(1)), Duration::ZERO).is_none());
    }

    /// Past its bound a session's record folds the keys written longest ago
    /// into "every key" at the newer one's time, one entry per key at its
    /// newest time: reads wait for a load after that, never a stale one.
    #[test]
    fn a_writer_s_record_folds_its_oldest_keys_past_the_bound() {
        let (start, window) = (Instant::now(), Duration::from_secs(60));
        let at = |n: u64| start + Duration::from_millis(n);
        let mut recent = Recent::<4>::default();
        for (n, key) in [(1, 1), (2, 2), (3, 1), (4, 3), (5, 4)] {
            recent = recent.and(Some(key), at(n), window);
        }
        let kept = |recent: &Recent<4>| recent.0.iter().flatten().map(|(key, at)| (*key, *at)).collect::<Vec<_>>();
        assert_eq!(kept(&recent), [(Some(2), at(2)), (Some(1), at(3)), (Some(3), at(4)), (Some(4), at(5))], "exact");
        recent = recent.and(Some(5), at(6), window);
        assert_eq!(kept(&recent), [(None, at(3)), (Some(3), at(4)), (Some(4), at(5)), (Some(5), at(6))], "folded");
        assert_eq!(recent.newest(|key| key.is_none_or(|k| k == 2), window), Some(at(3)), "2 is in the fold");
        assert_eq!(recent.newest(|key| key.is_none_or(|k| k == 4), window), Some(at(5)), "4 is exact");
        recent = recent.and(Some(6), at(70_000), window);
        assert_eq!(kept(&recent), [(Some(6), at(70_000))], "the window's writes only");
    }

    /// A load that was running when its entry was dropped read what was
    /// there before the change: it answers the readers that were waiting
    /// for it, but no reader after the drop.
    #[tokio::test]
    async fn a_load_running_across_a_drop_is_not_served_after_it() {
        for is_page in [true, false] {
            let cache = cache(Duration::ZERO);
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            let racing = async {
                let load = async {
                    released.await.map_err(|_| AppError::Internal(anyhow::anyhow!("the test stopped")))?;
                    Ok("\"before\"".to_owned())
                };
                let loaded = if is_page {
                    cache.get_or_load_page(&HeaderMap::new(), "wiki:a".to_owned(), load).await
                } else {
                    cache.get_or_load(&HeaderMap::new(), "wiki:a".to_owned(), load).await
                };
                body(&loaded.expect("the racing load"))
            };
            let change = async {
                while cache.counters.loads.get() == 0 {
                    tokio::task::yield_now().await;
                }
                if is_page {
                    cache.page_changed("wiki:a").await;
                } else {
                    cache.lists_changed();
                }
                release.send(()).expect("the load waits");
            };
            let (racing, ()) = tokio::join!(racing, change);
            assert_eq!(racing, "\"before\"");
            let after = if is_page {
                page(&cache, "wiki:a", "\"after\"").await
            } else {
                list(&cache, "wiki:a", "\"after\"").await
            };
            assert_eq!(after, "\"after\"", "page: {is_page}");
        }
    }
}
