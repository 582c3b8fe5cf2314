//! Sessions: a 32-byte random token, stored only as its SHA-256; the
//! per-request check reads a hot record (id, name, role, expiry) from a
//! byte-bounded cache, and falls back to one indexed query.
//!
//! A record is trusted for `fresh` (1 s) after PostgreSQL last confirmed it.
//! After that the next request that presents it is served on it and starts
//! one check in the background (at most [`BACKGROUND_CHECKS`] at once), which
//! refreshes or drops it; a record not confirmed for `stale` (10 s) is not
//! served at all, and the request checks it itself. Revocations and role
//! changes reach every proxy as events and drop records at once; without
//! its event (a listener down), a logout holds everywhere within `fresh`
//! plus one check while PostgreSQL answers, and within `stale` when it
//! does not. So a disk or machine stall does not make every signed-in
//! request wait for a connection of its own to re-check its session at the
//! same moment (with records expiring after 1 s, 36 users whose records
//! came due during a 180 ms stall took all 16 pooled connections, and
//! requests behind them were answered 503: RELIABILITY.md, the stall fault).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_util::task::TaskTracker;

use crate::AppError;
use crate::cache::{CacheCounters, ENTRY_OVERHEAD_BYTES};
use crate::store::Db;
use crate::store::ids::UserId;

pub const COOKIE: &str = "veritable_session";
/// A session lives 30 days after its last renewal.
pub const LIFETIME_DAYS: i32 = 30;

pub type TokenHash = [u8; 32];

/// What a request needs to know about its user: well under 256 bytes.
#[derive(Debug, Clone)]
pub struct HotSession {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl HotSession {
    /// Moderators and admins may pin, lock, move, and change others' posts.
    pub fn may_moderate(&self) -> bool {
        matches!(self.role.as_str(), "moderator" | "admin")
    }
}

/// Stale records checked again in the background at once, at most (each
/// holds a pooled connection for one indexed query); past it, stale records
/// are served until a check is free.
pub const BACKGROUND_CHECKS: usize = 4;

#[derive(Clone)]
struct Cached {
    hot: HotSession,
    /// When PostgreSQL last confirmed it.
    checked: Instant,
}

pub struct Sessions {
    cache: Cache<TokenHash, Cached>,
    counters: CacheCounters,
    fresh: Duration,
    /// Records being checked in the background.
    checking: Arc<Mutex<HashSet<TokenHash>>>,
    tasks: TaskTracker,
}

/// A new token (64 hex characters, given to the client once) and its hash.
pub fn new_token() -> (String, TokenHash) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = Sha256::digest(token.as_bytes()).into();
    (token, hash)
}

/// The hash of a presented token, if it has a token's shape.
pub fn hash_of(token: &str) -> Option<TokenHash> {
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Sha256::digest(token.as_bytes()).into())
}

impl Sessions {
    /// A cache of at most `max_bytes` of hot records, each trusted for
    /// `fresh` and served while checked again up to `stale` (at least
    /// `fresh`); revocations and role changes remove them sooner, when
    /// their event arrives ([`Sessions::forget_session`]). Background
    /// checks run on `tasks`.
    pub fn new(max_bytes: u64, fresh: Duration, stale: Duration, counters: CacheCounters, tasks: TaskTracker) -> Self {
        let evictions = counters.evictions.clone();
        let cache = Cache::builder()
            .weigher(|_: &TokenHash, c: &Cached| {
                let bytes = 32 + std::mem::size_of::<Cached>() + c.hot.username.len() + c.hot.role.len();
                u32::try_from(bytes + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .time_to_live(stale.max(fresh))
            .support_invalidation_closures()
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Self { cache, counters, fresh, checking: Arc::new(Mutex::new(HashSet::new())), tasks }
    }

    /// A session revoked anywhere (its `session.revoked` event).
    pub fn forget_session(&self, session_id: i64) {
        if let Err(error) = self.cache.invalidate_entries_if(move |_, c| c.hot.session_id == session_id) {
            tracing::warn!(%error, "session cache: cannot invalidate; entries expire with their TTL");
        }
    }

    /// Every cached session of a user whose role or account changed.
    pub fn forget_user(&self, user_id: i64) {
        if let Err(error) = self.cache.invalidate_entries_if(move |_, c| c.hot.user_id == user_id) {
            tracing::warn!(%error, "session cache: cannot invalidate; entries expire with their TTL");
        }
    }

    /// Bytes held (by the weigher's count) and entries, for `/metrics`.
    pub fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.weighted_size(), self.cache.entry_count())
    }

    pub async fn create(&self, db: &Db, user_id: i64) -> Result<String, AppError> {
        let (token, hash) = new_token();
        db.get().await?.session_create(UserId(user_id), hash.as_slice(), LIFETIME_DAYS).await?;
        Ok(token)
    }

    pub async fn lookup(&self, db: &Db, hash: &TokenHash) -> Result<Option<HotSession>, AppError> {
        if let Some(cached) = self.cache.get(hash).filter(|c| c.hot.expires_at > unix_now()) {
            self.counters.hits.inc();
            if cached.checked.elapsed() >= self.fresh {
                self.check_later(db, *hash);
            }
            return Ok(Some(cached.hot));
        }
        self.counters.misses.inc();
        self.counters.loads.inc();
        check(&self.cache, db, hash).await
    }

    /// Checks a stale record in the background, unless it is being checked
    /// already or every background check is taken (then a later request
    /// will).
    fn check_later(&self, db: &Db, hash: TokenHash) {
        {
            let Ok(mut checking) = self.checking.lock() else { return };
            if checking.len() >= BACKGROUND_CHECKS || !checking.insert(hash) {
                return;
            }
        }
        self.counters.loads.inc();
        let done = Checking { checking: self.checking.clone(), hash };
        let (cache, db) = (self.cache.clone(), db.clone());
        self.tasks.spawn(async move {
            if let Err(error) = check(&cache, &db, &hash).await {
                tracing::debug!(%error, "a session's background check failed; its record is served until it is stale");
            }
            drop(done);
        });
    }

    pub async fn revoke(&self, db: &Db, hash: &TokenHash) -> Result<(), AppError> {
        db.get().await?.session_revoke(hash.as_slice()).await?;
        self.cache.invalidate(hash);
        Ok(())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Reads a session's hot record from PostgreSQL (renewing it when due) and
/// caches it, or drops it from the cache when it is gone.
async fn check(cache: &Cache<TokenHash, Cached>, db: &Db, hash: &TokenHash) -> Result<Option<HotSession>, AppError> {
    let checked = Instant::now();
    let Some(row) = db.get().await?.session_lookup(hash.as_slice(), LIFETIME_DAYS).await? else {
        cache.invalidate(hash);
        return Ok(None);
    };
    let hot = HotSession {
        session_id: row.get(0),
        user_id: row.get(1),
        username: row.get(2),
        role: row.get(3),
        expires_at: row.get(4),
    };
    cache.insert(*hash, Cached { hot: hot.clone(), checked });
    Ok(Some(hot))
}

/// A background check in flight, forgotten when it ends however it ends.
struct Checking {
    checking: Arc<Mutex<HashSet<TokenHash>>>,
    hash: TokenHash,
}

impl Drop for Checking {
    fn drop(&mut self) {
        if let Ok(mut checking) = self.checking.lock() {
            checking.remove(&self.hash);
        }
    }
}
