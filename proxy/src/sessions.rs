//! Sessions: a 32-byte random token, stored only as its SHA-256; the
//! per-request check reads a hot record (id, name, role, expiry) from a
//! byte-bounded cache with a 1 s time-to-live, so a logout anywhere holds
//! everywhere within a second, and falls back to one indexed query.

use std::time::Duration;

use moka::notification::RemovalCause;
use moka::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};

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

pub struct Sessions {
    cache: Cache<TokenHash, HotSession>,
    counters: CacheCounters,
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
    /// A cache of at most `max_bytes` of hot records.
    /// Entries live `ttl` at most; revocations and role changes remove them
    /// sooner, when their event arrives ([`Sessions::forget_session`]).
    pub fn new(max_bytes: u64, ttl: Duration, counters: CacheCounters) -> Self {
        let evictions = counters.evictions.clone();
        let cache = Cache::builder()
            .weigher(|_: &TokenHash, s: &HotSession| {
                let bytes = 32 + std::mem::size_of::<HotSession>() + s.username.len() + s.role.len();
                u32::try_from(bytes + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .time_to_live(ttl)
            .support_invalidation_closures()
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Self { cache, counters }
    }

    /// A session revoked anywhere (its `session.revoked` event).
    pub fn forget_session(&self, session_id: i64) {
        if let Err(error) = self.cache.invalidate_entries_if(move |_, s| s.session_id == session_id) {
            tracing::warn!(%error, "session cache: cannot invalidate; entries expire with their TTL");
        }
    }

    /// Every cached session of a user whose role or account changed.
    pub fn forget_user(&self, user_id: i64) {
        if let Err(error) = self.cache.invalidate_entries_if(move |_, s| s.user_id == user_id) {
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
        if let Some(hot) = self.cache.get(hash) {
            self.counters.hits.inc();
            return Ok(Some(hot));
        }
        self.counters.misses.inc();
        let Some(row) = db.get().await?.session_lookup(hash.as_slice(), LIFETIME_DAYS).await? else {
            return Ok(None);
        };
        let hot = HotSession {
            session_id: row.get(0),
            user_id: row.get(1),
            username: row.get(2),
            role: row.get(3),
            expires_at: row.get(4),
        };
        self.cache.insert(*hash, hot.clone());
        Ok(Some(hot))
    }

    pub async fn revoke(&self, db: &Db, hash: &TokenHash) -> Result<(), AppError> {
        db.get().await?.session_revoke(hash.as_slice()).await?;
        self.cache.invalidate(hash);
        Ok(())
    }
}
