//! Rate limits kept in PostgreSQL (`veritable.rate_limit`), so every proxy
//! instance counts against the same windows.

use std::net::IpAddr;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use crate::AppError;
use crate::config::ServeConfig;
use crate::store::Db;

/// Attempts per window.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_ip: i32,
    pub per_account: i32,
    pub window_secs: i32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { per_ip: 30, per_account: 10, window_secs: 60 }
    }
}

impl LoginLimits {
    pub fn of(config: &ServeConfig) -> Self {
        Self { per_ip: config.login_per_ip, per_account: config.login_per_account, window_secs: 60 }
    }
}

/// Posts (topics and replies) per user per minute, counted in the same
/// statement as the post itself.
#[derive(Debug, Clone, Copy)]
pub struct PostLimit {
    pub per_minute: i32,
}

impl PostLimit {
    pub fn key(self, user_id: i64) -> String {
        format!("post:user:{user_id}")
    }
}

/// Writes other than posts (edits, deletes, wiki saves, marking read,
/// preferences) per user per minute; counted by the `Writer` extractor (`http::extract`).
#[derive(Debug, Clone, Copy)]
pub struct WriteLimit {
    pub per_minute: i32,
}

/// Counts one write of `user_id`; 429 past the limit.
pub async fn write_attempt(db: &Db, limit: WriteLimit, user_id: i64) -> Result<(), AppError> {
    hit(db, &format!("write:user:{user_id}"), limit.per_minute, 60).await
}

/// Counts one registration from `ip`; 429 past `per_hour`. Checked before
/// the password is hashed.
pub async fn registration_attempt(db: &Db, per_hour: i32, ip: IpAddr) -> Result<(), AppError> {
    hit(db, &format!("register:ip:{ip}"), per_hour, 3600).await
}

/// The answer of `veritable.rate_limit`: 0 = go on, else 429 with the wait.
pub fn check_wait(wait: i32) -> Result<(), AppError> {
    match u32::try_from(wait) {
        Ok(0) | Err(_) => Ok(()),
        Ok(retry_after) => Err(AppError::RateLimited { retry_after }),
    }
}

async fn hit(db: &Db, key: &str, max: i32, window_secs: i32) -> Result<(), AppError> {
    check_wait(db.get().await?.rate_limit(key, max, window_secs).await?)
}

/// Counts a login attempt from `ip` for `username`; 429 past either limit.
/// Checked before the password is hashed, so a flood costs no argon2 work.
///
/// The account's window is kept per account *and* address: a window per
/// account alone would let anyone lock any user out by failing its logins.
/// Guessing one account's password from many addresses is bounded by each
/// address's own window and by argon2's cost per attempt.
pub async fn login_attempt(db: &Db, limits: LoginLimits, ip: IpAddr, username: &str) -> Result<(), AppError> {
    hit(db, &format!("login:ip:{ip}"), limits.per_ip, limits.window_secs).await?;
    let account: String = username.to_lowercase().chars().take(64).collect();
    hit(db, &format!("login:user:{account}:ip:{ip}"), limits.per_account, limits.window_secs).await
}

/// Removes windows older than an hour, and idempotency keys past their 24
/// hours, every minute, until `cancel`. Keys go at most
/// [`KEY_SWEEP_BATCH`] rows a statement and [`KEY_SWEEP_CALLS`] statements a
/// minute (about 1,600 keyed writes a second, sustained); a larger backlog
/// waits for the next minutes.
pub async fn sweep(pool: Pool, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        let swept = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .simple_query("SELECT veritable.rate_limit_sweep(interval '1 hour')")
                .await
                .map_err(|e| e.to_string())?;
            let keys = format!(
                "SELECT veritable.idempotency_sweep(interval '{}', {KEY_SWEEP_BATCH})",
                crate::store::idempotency::KEEP
            );
            for _ in 0..KEY_SWEEP_CALLS {
                let gone: i64 = client.query_one(&keys, &[]).await.map_err(|e| e.to_string())?.get(0);
                if gone < KEY_SWEEP_BATCH {
                    break;
                }
            }
            Ok::<(), String>(())
        };
        if let Err(error) = swept.await {
            tracing::warn!(%error, "housekeeping sweep failed; retrying in a minute");
        }
    }
}

const KEY_SWEEP_BATCH: i64 = 10_000;
const KEY_SWEEP_CALLS: usize = 10;

/// Searches running at once, and the time each may take in PostgreSQL.
#[derive(Clone)]
pub struct SearchBudget {
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
    pub time: std::time::Duration,
}

impl SearchBudget {
    pub fn new(at_once: usize, time: std::time::Duration) -> Self {
        Self { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(at_once.max(1))), time }
    }
}
