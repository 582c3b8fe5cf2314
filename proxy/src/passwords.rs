//! Password hashing (argon2id) on a bounded set of blocking threads: a login
//! flood queues here, briefly, instead of stalling the request workers, and
//! is turned away with 503 when the queue is long.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::AppError;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    wait: Duration,
}

/// Verified against when the account does not exist, so a missing user costs
/// what a wrong password costs (computed once, on first use).
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        match SaltString::encode_b64(b"veritable-dummy!") {
            Ok(salt) => Argon2::default().hash_password(b"no account", &salt).map_or_else(|_| String::new(), |h| h.to_string()),
            Err(_) => String::new(),
        }
    })
}

impl Hasher {
    /// At most `parallel` hashes at once; a request waits at most `wait` for a turn.
    pub fn new(parallel: usize, wait: Duration) -> Self {
        Self { permits: Arc::new(Semaphore::new(parallel.max(1))), wait }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Busy)?
            .map_err(|_| AppError::Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password hashing task failed: {e}")))?;
        Ok(out)
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || {
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            let salt = SaltString::encode_b64(&bytes)?;
            Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing a password: {e}")))
    }

    /// Whether `password` matches `stored` (None: the account does not exist).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, AppError> {
        self.run(move || {
            let exists = stored.is_some();
            let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let ok = PasswordHash::new(&stored)
                .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false);
            ok && exists
        })
        .await
    }
}
