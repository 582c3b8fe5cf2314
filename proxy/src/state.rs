//! What every handler can reach: kept apart from the router, so handlers
//! never import the module that imports them.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::cache::ResponseCache;
use crate::limits::{LoginLimits, PostLimit, SearchBudget, WriteLimit};
use crate::metrics::Metrics;
use crate::passwords::Hasher;
use crate::posting::Posting;
use crate::realtime::Realtime;
use crate::sessions::Sessions;
use crate::store::views::Views;
use crate::store::{Db, Probe, Reachability};

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    pub reachability: Reachability,
    pub sessions: Arc<Sessions>,
    pub hasher: Hasher,
    /// Mark the session cookie Secure (behind TLS).
    pub cookie_secure: bool,
    pub login_limits: LoginLimits,
    pub post_limit: PostLimit,
    /// Reply posts, gathered into batches (one statement and one commit each).
    pub posting: Posting,
    pub write_limit: WriteLimit,
    pub registrations_per_hour: i32,
    /// Searches that may run at once, and for how long each.
    pub search: SearchBudget,
    /// Markdown previews rendering now (`api::preview`); none left → 503 at once.
    pub previews: Arc<Semaphore>,
    pub views: Arc<Views>,
    /// Hot read responses (topic list pages, categories), byte-bounded, short TTL.
    pub responses: Arc<ResponseCache>,
    /// Permits for requests in flight; none left → 503 at once.
    pub in_flight: Arc<Semaphore>,
    /// Largest request body (bytes): what an idempotent request buffers at most.
    pub body_limit_bytes: usize,
    pub realtime: Arc<Realtime>,
    /// `/healthz`'s remembered probe.
    pub health: Arc<Probe>,
}
