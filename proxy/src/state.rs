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

/// What the handlers share, behind one `Arc`: axum clones the state for
/// every request (several times, through the router's layers), and cloning
/// the fields one by one cost the proxy about a sixth of its CPU under the
/// seed's mix (`perf`: `AppState::clone` and its drop, dozens of atomic
/// counts on lines both cores write, and the struct's copy).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Every field is a handle (cheap to clone on its own).
pub struct Shared {
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
