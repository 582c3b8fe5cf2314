//! Prepared SPI plans kept for the life of the backend, so hot functions
//! parse and plan their queries once, not once per call.
//!
//! They run with their generic plan. Left to itself PostgreSQL's plan cache
//! kept re-planning the category page on every call on large data (a custom
//! plan looked cheaper for a big category): 0.49 ms per call on 1M replies
//! against 0.22 ms once planned, which made the page slower on more data. A
//! function-level `SET plan_cache_mode` did the same but costs a GUC save
//! and restore per returned row (set-returning functions are called once per
//! row): 7% of a 500-row reply_tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use pgrx::{PgOid, pg_sys};

thread_local! {
    // A PostgreSQL backend is one process running one statement at a time on
    // one thread: a RefCell is all the synchronization this needs. Kept plans
    // are revalidated by PostgreSQL's plan cache after DDL.
    // Keyed by the address and length of the 'static SQL text: hashing the
    // whole text on every one of a walk's few hundred queries showed up in
    // profiles (SipHash over ~300 bytes per query).
    static PLANS: RefCell<HashMap<(usize, usize), OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the kept plan for `sql`, preparing it on first use.
pub fn with_plan<R>(
    client: &SpiClient<'_>,
    sql: &'static str,
    args: &[PgOid],
    f: impl FnOnce(&OwnedPreparedStatement) -> SpiResult<R>,
) -> SpiResult<R> {
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        let plan = match plans.entry((sql.as_ptr() as usize, sql.len())) {
            Entry::Occupied(kept) => kept.into_mut(),
            Entry::Vacant(slot) => slot.insert(client.prepare(sql, args)?.keep()),
        };
        let _generic = GenericPlans::force();
        f(plan)
    })
}

/// While alive, PostgreSQL's plan cache uses generic plans; the session's
/// own `plan_cache_mode` comes back on drop, also when a query fails (the
/// error unwinds through here).
struct GenericPlans(std::ffi::c_int);

impl GenericPlans {
    fn force() -> Self {
        // SAFETY: a plain int GUC without hooks, read by the plan cache when
        // a plan is executed; one thread per backend.
        unsafe {
            let session = pg_sys::plan_cache_mode;
            pg_sys::plan_cache_mode = pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as std::ffi::c_int;
            Self(session)
        }
    }
}

impl Drop for GenericPlans {
    fn drop(&mut self) {
        // SAFETY: as in `force`.
        unsafe { pg_sys::plan_cache_mode = self.0 }
    }
}
